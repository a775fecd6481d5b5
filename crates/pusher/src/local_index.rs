//! Every platform of a multi-platform image under its one local name, where the engine's
//! image store can hold that: the containerd image store (Docker 24+ with the containerd
//! snapshotter, the default from Docker 29). The classic store (Docker 20.10 and others without
//! it) holds one image per name, so there the compose name keeps the engine's own platform and
//! the others keep their platform names (`<tag>-linux-arm64`).
//!
//! The engine API has no call that makes an index of images it holds, but loading an OCI image
//! layout (`POST /images/load`) does: a layout whose `index.json` names an index, with only the
//! index's own blob in it, makes the name hold that index; the platform images it lists are
//! already in the engine's content store, where the builds put them. The index is the one the
//! release wrote to the registry, byte for byte, so the local image has the registry's digest.
//! A child the engine does not hold (a platform routed to another engine, or reused from the
//! registry) would make a name that cannot run, so then nothing is loaded.

use crate::api::RawManifest;
use bollard::query_parameters::ImportImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use wharf_docker::reference::ImageReference;

/// The store's driver type when the engine keeps images in containerd (`docker info`'s
/// `DriverStatus`).
const CONTAINERD_SNAPSHOTTER: &str = "io.containerd.snapshotter.v1";

/// Why an index could not be made the local image.
#[derive(Debug, thiserror::Error)]
pub enum LocalIndexError {
    #[error("{name} names no image tag: {message}")]
    Name { name: String, message: String },
    #[error("the engine does not hold {digest} (the {platform} image)")]
    Missing { digest: String, platform: String },
    #[error("the index is not readable: {0}")]
    Index(String),
    #[error("cannot read the manifest of {image}: {message}")]
    Export { image: String, message: String },
    #[error("the engine refused the index: {0}")]
    Load(String),
}

/// Whether the engine's image store holds several platforms under one name.
pub async fn holds_every_platform(docker: &Docker) -> bool {
    match docker.info().await {
        Ok(info) => info
            .driver_status
            .unwrap_or_default()
            .iter()
            .any(|pair| pair.get(1).map(String::as_str) == Some(CONTAINERD_SNAPSHOTTER)),
        Err(e) => {
            tracing::debug!("docker info failed ({e}); taking the classic image store");
            false
        }
    }
}

/// Makes `name` (a local image name, e.g. the compose one) hold `index`, whose every platform
/// image the engine already holds.
pub async fn load(docker: &Docker, name: &str, index: &RawManifest) -> Result<(), LocalIndexError> {
    let reference = ImageReference::parse(name).map_err(|e| LocalIndexError::Name {
        name: name.to_string(),
        message: e.to_string(),
    })?;
    let tag = reference
        .tag_or_default()
        .ok_or_else(|| LocalIndexError::Name {
            name: name.to_string(),
            message: "it is a digest".into(),
        })?
        .to_string();
    for child in crate::index::children(index).map_err(|e| LocalIndexError::Index(e.to_string()))? {
        // In the containerd store an image's ID is its manifest's digest.
        if docker.inspect_image(&child.digest).await.is_err() {
            return Err(LocalIndexError::Missing {
                digest: child.digest,
                platform: child.platform.to_string(),
            });
        }
    }
    let layout = layout(&reference.normalized(), &tag, index)
        .map_err(|e| LocalIndexError::Load(format!("cannot write the image layout: {e}")))?;
    let options = ImportImageOptionsBuilder::new().quiet(true).build();
    let mut answers = docker.import_image(options, bollard::body_full(layout.into()), None);
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(LocalIndexError::Load(e));
                }
            }
            Err(e) => return Err(LocalIndexError::Load(e.to_string())),
        }
    }
    Ok(())
}

/// Makes `name` hold an index of the platform images `built` (platform, local name) the
/// engine holds: for a run that writes no index to a registry (`wharf build` alone). The
/// engine API (before 1.47) tells no image's manifest size and media type, which the index
/// needs, so each image is exported until its manifest has gone by.
pub async fn hold_built(
    docker: &Docker,
    name: &str,
    built: &[(crate::index::Platform, String)],
) -> Result<RawManifest, LocalIndexError> {
    let mut children = Vec::new();
    for (platform, image) in built {
        let manifest = manifest_of(docker, image).await?;
        children.push(crate::index::Child::of(&manifest, platform.clone()));
    }
    let index = crate::index::document(&children);
    load(docker, name, &index).await?;
    Ok(index)
}

/// The manifest of `image`, a single-platform image of the containerd store (whose ID is the
/// manifest's digest), read from the engine's export of it.
async fn manifest_of(docker: &Docker, image: &str) -> Result<RawManifest, LocalIndexError> {
    let missing = |message: String| LocalIndexError::Export {
        image: image.to_string(),
        message,
    };
    let id = docker
        .inspect_image(image)
        .await
        .map_err(|e| missing(e.to_string()))?
        .id
        .ok_or_else(|| missing("the engine names no image ID".into()))?;
    let blob = format!(
        "blobs/sha256/{}",
        id.strip_prefix("sha256:")
            .ok_or_else(|| missing(format!("{id}: not a sha256 digest")))?
    );
    let stream = docker
        .export_image(image)
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    // The tar crate reads synchronously: off the runtime's threads. Returning early drops the
    // export (the rest of the image is never read).
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<u8>>> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.path()?.as_os_str() == std::ffi::OsStr::new(&blob) {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes)?;
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    })
    .await
    .map_err(|e| missing(e.to_string()))?
    .map_err(|e| missing(e.to_string()))?
    .ok_or_else(|| missing(format!("the export holds no manifest {id}")))?;
    let digest = {
        use sha2::Digest;
        format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
    };
    if digest != id {
        return Err(missing(format!("the manifest read is {digest}, not {id}")));
    }
    let media_type = crate::api::media_type_of(&bytes)
        .ok_or_else(|| missing(format!("the manifest {id} names no media type")))?;
    Ok(RawManifest {
        bytes: bytes.into(),
        media_type,
        digest: id,
    })
}

/// An OCI image layout (a tar) of `index` alone, named `normalized` (containerd's name) and
/// `tag` (the layout's reference name).
fn layout(normalized: &str, tag: &str, index: &RawManifest) -> std::io::Result<Vec<u8>> {
    let hex = index
        .digest
        .strip_prefix("sha256:")
        .ok_or_else(|| std::io::Error::other(format!("{}: not a sha256 digest", index.digest)))?;
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": index.media_type,
            "digest": index.digest,
            "size": index.bytes.len(),
            "annotations": {
                "io.containerd.image.name": normalized,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    });
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o444);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, bytes)
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add(&format!("blobs/sha256/{hex}"), &index.bytes)?;
    add("index.json", top.to_string().as_bytes())?;
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{document, Child};
    use std::io::Read;

    #[test]
    fn the_layout_names_the_index_and_holds_its_blob_only() {
        let child = |platform: &str, digit: char| Child {
            digest: format!("sha256:{}", digit.to_string().repeat(64)),
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            size: 692,
            platform: crate::index::Platform::parse(platform).unwrap(),
        };
        let index = document(&[child("linux/amd64", 'a'), child("linux/arm64", 'b')]);
        let bytes = layout("docker.io/library/shop-api:latest", "latest", &index).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut files = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.insert(path, content);
        }
        let blob = format!("blobs/sha256/{}", &index.digest["sha256:".len()..]);
        assert_eq!(
            files.keys().cloned().collect::<Vec<_>>(),
            [blob.as_str(), "index.json", "oci-layout"]
        );
        assert_eq!(
            files[&blob],
            index.bytes.to_vec(),
            "the index byte for byte"
        );
        let top: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let entry = &top["manifests"][0];
        assert_eq!(entry["digest"], index.digest.as_str());
        assert_eq!(entry["mediaType"], index.media_type.as_str());
        assert_eq!(entry["size"], index.bytes.len());
        assert_eq!(
            entry["annotations"]["io.containerd.image.name"],
            "docker.io/library/shop-api:latest"
        );
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "latest"
        );
    }
}
