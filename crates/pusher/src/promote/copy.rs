//! `promote --to`: a release's images copied to another registry through the registry API —
//! never pulled into a daemon. Every blob of every image (each platform image of an index, and
//! whatever else the index names) is mounted from the source repository when both are on one
//! registry, else streamed from one registry to the other; then each manifest is stored byte
//! for byte, platform images by digest before the index naming them, so every digest stays
//! what it was. The destination's identity tags are read back and compared with the source.

use super::find::{children, Found};
use crate::api::RawManifest;
use crate::events::Phase;
use crate::login::Login;
use crate::release::{Interrupt, Logins, Tagger};
use crate::target::ImageTarget;
use crate::Error;
use futures_util::stream::{self, StreamExt};
use std::collections::{BTreeMap, HashMap};

/// Services copied at once.
const COPIES: usize = 4;

/// Copies every found release from `sources` to `destinations` (the same services elsewhere)
/// and tags it there with the destination's identity tags. Returns each service's digest in
/// the destination, or every service whose copy failed.
pub async fn copy_all(
    tagger: &Tagger<'_>,
    interrupt: &Interrupt,
    sources: &[ImageTarget],
    source_logins: &Logins,
    destinations: &[ImageTarget],
    found: &BTreeMap<String, Found>,
) -> Result<BTreeMap<String, String>, Vec<(String, Error)>> {
    interrupt.enter(Phase::Identity);
    tagger.events.phase(Phase::Identity);
    let by_service: HashMap<&str, &ImageTarget> =
        sources.iter().map(|t| (t.service.as_str(), t)).collect();
    let work = destinations.iter().filter_map(|to| {
        let from = by_service.get(to.service.as_str())?;
        let release = found.get(&to.service)?;
        Some(async move {
            let from_host = from.host.as_deref().unwrap_or_default();
            let r = copy_one(
                tagger,
                from,
                source_logins.get(from_host),
                to,
                &release.manifest,
            )
            .await;
            (to.service.clone(), r)
        })
    });
    let results = stream::iter(work)
        .buffer_unordered(COPIES)
        .collect::<Vec<_>>()
        .await;
    let mut digests = BTreeMap::new();
    let mut failed = Vec::new();
    for (service, r) in results {
        match r {
            Ok(d) => {
                digests.insert(service, d);
            }
            Err(e) => failed.push((service, e)),
        }
    }
    if failed.is_empty() {
        Ok(digests)
    } else {
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        Err(failed)
    }
}

/// One service: its image (or index) into `to`'s repository, then `to`'s identity tags on it,
/// read back. Returns the digest, the source's.
async fn copy_one(
    tagger: &Tagger<'_>,
    from: &ImageTarget,
    from_login: Option<&Login>,
    to: &ImageTarget,
    manifest: &RawManifest,
) -> Result<String, Error> {
    let source = repository(from)?;
    let (target, to_login) = tagger.repository(to)?;
    let ends = Ends {
        tagger,
        service: &to.service,
        source: &source,
        from_login,
        target: &target,
        to_login,
    };
    ends.manifest_blobs(manifest).await?;
    for tag in &to.identity_tags {
        tagger
            .copy(to, &target, tag, manifest, to_login, true)
            .await?;
    }
    for tag in &to.identity_tags {
        let reference = format!("{target}:{tag}");
        let served = tagger
            .retried(&to.service, &format!("HEAD {reference}"), || {
                tagger.api.manifest_digest(&reference, to_login)
            })
            .await?;
        if served.as_deref() != Some(manifest.digest.as_str()) {
            return Err(Error::Push {
                reference,
                message: format!(
                    "the copy serves {}, not the source's {}",
                    served.as_deref().unwrap_or("nothing"),
                    manifest.digest
                ),
                fault: crate::error::Fault::permanent(),
            });
        }
    }
    Ok(manifest.digest.clone())
}

fn repository(t: &ImageTarget) -> Result<String, Error> {
    t.repository_ref().ok_or_else(|| Error::Registry {
        registry: format!("{:?}", t.registry),
        message: "the registry host is not resolved".into(),
        fault: crate::error::Fault::permanent(),
    })
}

/// Both ends of one service's copy.
struct Ends<'a> {
    tagger: &'a Tagger<'a>,
    service: &'a str,
    source: &'a str,
    from_login: Option<&'a Login>,
    target: &'a str,
    to_login: Option<&'a Login>,
}

impl Ends<'_> {
    /// Everything `manifest` needs in the target before it can be stored there: its blobs,
    /// or for an index, each manifest it names (stored by digest) with their blobs.
    async fn manifest_blobs(&self, manifest: &RawManifest) -> Result<(), Error> {
        for child in children(manifest) {
            let reference = format!("{}@{}", self.source, child.digest);
            let image = self
                .tagger
                .retried(self.service, &format!("GET {reference}"), || {
                    self.tagger.api.manifest(&reference, self.from_login)
                })
                .await?
                .ok_or(Error::NotFound {
                    reference: reference.clone(),
                })?;
            // An index inside an index is not something a release makes: one level is copied.
            for digest in blobs(&image) {
                self.blob(&digest).await?;
            }
            let target = self.target;
            self.tagger
                .retried(
                    self.service,
                    &format!("PUT {target}@{}", image.digest),
                    || {
                        self.tagger
                            .api
                            .put_manifest_by_digest(target, &image, self.to_login)
                    },
                )
                .await?;
        }
        for digest in blobs(manifest) {
            self.blob(&digest).await?;
        }
        Ok(())
    }

    /// One blob into the target: nothing when it is there, a mount within one registry, else
    /// a streamed copy.
    async fn blob(&self, digest: &str) -> Result<(), Error> {
        let api = self.tagger.api;
        let what = format!("{}@{digest}", self.target);
        let there = self
            .tagger
            .retried(self.service, &format!("HEAD {what}"), || {
                api.blob_exists(self.target, digest, self.to_login)
            })
            .await?;
        if there {
            return Ok(());
        }
        if host(self.source) == host(self.target)
            && api
                .mount_blob(self.target, self.source, digest, self.to_login)
                .await?
        {
            return Ok(());
        }
        self.tagger
            .retried(self.service, &format!("copy of {what}"), || {
                api.copy_blob(
                    self.source,
                    self.from_login,
                    self.target,
                    self.to_login,
                    digest,
                )
            })
            .await
    }
}

fn host(repository: &str) -> &str {
    repository.split('/').next().unwrap_or_default()
}

/// The blobs an image manifest names: its config and its layers (none for an index).
fn blobs(manifest: &RawManifest) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        config: Option<Descriptor>,
        #[serde(default)]
        layers: Vec<Descriptor>,
    }
    #[derive(serde::Deserialize)]
    struct Descriptor {
        digest: String,
    }
    let Ok(doc) = serde_json::from_slice::<Doc>(&manifest.bytes) else {
        return Vec::new();
    };
    doc.config
        .into_iter()
        .chain(doc.layers)
        .map(|d| d.digest)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_needs_its_config_and_layers() {
        let image = RawManifest {
            bytes: bytes::Bytes::from_static(br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":1},"layers":[{"digest":"sha256:l1","size":2},{"digest":"sha256:l2","size":3}]}"#),
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            digest: "sha256:m".into(),
        };
        assert_eq!(blobs(&image), vec!["sha256:c", "sha256:l1", "sha256:l2"]);
        assert_eq!(host("127.0.0.1:5000/a/b"), "127.0.0.1:5000");
    }
}
