//! The manifest of a release (`--manifest`, the `manifest` step output): one entry per image,
//! with the digest every one of its tags names.

use crate::target::ImageTarget;
use serde::Serialize;
use wharf_compose::platform::Platform;

/// One image of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestImage {
    pub service: String,
    pub registry: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: String,
    pub uri: String,
    /// A multi-platform image's platforms (`digest` is then its index's; for a run that made
    /// only some platforms, the first platform's, and `tags` are platform identity tags).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image of a multi-platform image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformImage {
    pub platform: Platform,
    pub digest: String,
}

impl ManifestImage {
    pub fn new(t: &ImageTarget, digest: &str) -> ManifestImage {
        Self::with_platforms(t, digest, Vec::new())
    }

    pub fn with_platforms(
        t: &ImageTarget,
        digest: &str,
        platforms: Vec<PlatformImage>,
    ) -> ManifestImage {
        let host = t.host.clone().unwrap_or_default();
        let tags = if t.partial {
            platforms
                .iter()
                .flat_map(|p| t.platform_tags(&p.platform))
                .collect()
        } else {
            t.all_tags().cloned().collect()
        };
        ManifestImage {
            service: t.service.clone(),
            uri: format!("{host}/{}@{digest}", t.repository),
            registry: host,
            repository: t.repository.clone(),
            tags,
            digest: digest.to_string(),
            platforms,
        }
    }
}

/// The manifest document.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest<'a> {
    pub project: &'a str,
    pub images: &'a [ManifestImage],
}

impl Manifest<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest is plain data")
    }
}
