//! The manifest of a release (`--manifest`, the `manifest` step output): one entry per image,
//! with the digest every one of its tags names.

use crate::target::ImageTarget;
use serde::Serialize;

/// One image of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestImage {
    pub service: String,
    pub registry: String,
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: String,
    pub uri: String,
}

impl ManifestImage {
    pub fn new(t: &ImageTarget, digest: &str) -> ManifestImage {
        let host = t.host.clone().unwrap_or_default();
        ManifestImage {
            service: t.service.clone(),
            uri: format!("{host}/{}@{digest}", t.repository),
            registry: host,
            repository: t.repository.clone(),
            tags: t.all_tags().cloned().collect(),
            digest: digest.to_string(),
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
