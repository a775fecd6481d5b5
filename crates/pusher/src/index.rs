//! A multi-platform image's index, written through the registry API from images the
//! repository already holds: an OCI image index, or a Docker manifest list when every child
//! is a Docker schema-2 manifest (what a Docker engine's push makes), so that the index and
//! its children speak one format.
//!
//! Only the index manifest travels: its children must have been pushed to the same
//! repository before (a registry refuses an index naming manifests it does not hold).

use crate::api::{RawManifest, RegistryApi};
use crate::login::Login;
use crate::Error;
use serde::Serialize;
use sha2::{Digest, Sha256};
pub use wharf_compose::platform::Platform;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One platform's image of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// `sha256:…` of its manifest.
    pub digest: String,
    pub media_type: String,
    /// Bytes of its manifest.
    pub size: u64,
    pub platform: Platform,
}

impl Child {
    /// The child a manifest the registry served makes, for `platform`.
    pub fn of(manifest: &RawManifest, platform: Platform) -> Child {
        Child {
            digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            size: manifest.bytes.len() as u64,
            platform,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    schema_version: u8,
    media_type: &'a str,
    manifests: Vec<Entry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    platform: EntryPlatform<'a>,
}

#[derive(Serialize)]
struct EntryPlatform<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

/// The index of `children` (in platform order, so one set always gives the same bytes).
pub fn document(children: &[Child]) -> RawManifest {
    let mut children: Vec<&Child> = children.iter().collect();
    children.sort_by(|a, b| a.platform.cmp(&b.platform));
    let media_type = if children.iter().all(|c| c.media_type == DOCKER_MANIFEST) {
        DOCKER_LIST
    } else {
        OCI_INDEX
    };
    let doc = Document {
        schema_version: 2,
        media_type,
        manifests: children
            .iter()
            .map(|c| Entry {
                media_type: &c.media_type,
                digest: &c.digest,
                size: c.size,
                platform: EntryPlatform {
                    architecture: &c.platform.architecture,
                    os: &c.platform.os,
                    variant: c.platform.variant.as_deref(),
                },
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    RawManifest {
        bytes: bytes.into(),
        media_type: media_type.to_string(),
        digest,
    }
}

/// The platform images an index names (attestation manifests left out), in its order.
pub fn children(index: &RawManifest) -> Result<Vec<Child>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        manifests: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Item {
        media_type: String,
        digest: String,
        size: u64,
        platform: Option<Plat>,
    }
    #[derive(serde::Deserialize)]
    struct Plat {
        os: String,
        architecture: String,
        variant: Option<String>,
    }
    let doc: Doc = serde_json::from_slice(&index.bytes)?;
    Ok(doc
        .manifests
        .into_iter()
        .filter_map(|i| {
            let p = i.platform?;
            let text = match &p.variant {
                Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
                _ => format!("{}/{}", p.os, p.architecture),
            };
            // BuildKit's attestation manifests sit beside the images as `unknown/unknown`.
            let platform = Platform::parse(&text).ok().filter(|p| p.os != "unknown")?;
            Some(Child {
                digest: i.digest,
                media_type: i.media_type,
                size: i.size,
                platform,
            })
        })
        .collect())
}

/// Writes the index of `children` to `repository` (`host/repo`) under every tag of `tags`
/// (none: stored by digest only); returns it.
pub async fn write(
    api: &RegistryApi,
    repository: &str,
    children: &[Child],
    tags: &[String],
    login: Option<&Login>,
) -> Result<RawManifest, Error> {
    let index = document(children);
    if tags.is_empty() {
        api.put_manifest(repository, &index.digest, &index, login)
            .await?;
    }
    for tag in tags {
        api.put_manifest(repository, tag, &index, login).await?;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(platform: &str, media_type: &str) -> Child {
        Child {
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: media_type.into(),
            size: 528,
            platform: Platform::parse(platform).unwrap(),
        }
    }

    #[test]
    fn docker_children_make_a_manifest_list_others_an_oci_index() {
        let list = document(&[
            child("linux/arm64", DOCKER_MANIFEST),
            child("linux/amd64", DOCKER_MANIFEST),
        ]);
        assert_eq!(list.media_type, DOCKER_LIST);
        let parsed = children(&list).unwrap();
        let platforms: Vec<String> = parsed.iter().map(|c| c.platform.to_string()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "platform order");
        let json: serde_json::Value = serde_json::from_slice(&list.bytes).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["manifests"][1]["platform"]["architecture"], "arm64");
        assert!(json["manifests"][1]["platform"].get("variant").is_none());
        let oci = document(&[
            child("linux/arm/v7", OCI_MANIFEST),
            child("linux/amd64", DOCKER_MANIFEST),
        ]);
        assert_eq!(oci.media_type, OCI_INDEX);
        let json: serde_json::Value = serde_json::from_slice(&oci.bytes).unwrap();
        assert_eq!(json["manifests"][1]["platform"]["variant"], "v7");
        assert_eq!(
            document(&[
                child("linux/amd64", DOCKER_MANIFEST),
                child("linux/arm64", DOCKER_MANIFEST)
            ])
            .digest,
            list.digest,
            "one set, one digest"
        );
    }
}
