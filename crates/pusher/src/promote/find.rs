//! Step 1 of a promotion: the commit's release, found whole in the registry or not at all.

use crate::api::RawManifest;
use crate::index::{self, Platform};
use crate::release::Tagger;
use crate::target::ImageTarget;
use crate::trust::{self, Distrust, Verdict};
use crate::Error;
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeMap;

/// Services looked up at once.
const LOOKUPS: usize = 8;

/// A service's release of the commit, found.
#[derive(Debug, Clone)]
pub struct Found {
    /// What its identity tags name (an image, or an index of platform images), or will name
    /// once [`Found::unwritten`] is written.
    pub manifest: RawManifest,
    /// A multi-platform service whose shards pushed only platform identity tags: the index
    /// `manifest` is, still to be written under these identity tags.
    pub unwritten: Option<Unwritten>,
}

/// An index promote writes before anything moves: its platforms' images, each found under
/// its platform identity tags and trusted.
#[derive(Debug, Clone)]
pub struct Unwritten {
    pub children: Vec<index::Child>,
    /// The identity tags not yet naming it.
    pub tags: Vec<String>,
}

/// Why a service's release of the commit cannot be promoted.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("no identity tag {} in {repository} (its build or push did not land)", tags.join(", "))]
    Missing {
        repository: String,
        tags: Vec<String>,
    },
    #[error("its index {digest} in {repository} names platform images the repository does not hold: {}", platforms.join(", "))]
    MissingPlatforms {
        repository: String,
        digest: String,
        platforms: Vec<String>,
    },
    #[error("no identity tag {} in {repository}, and no platform identity tag for {} (their platforms' builds or pushes did not land)", tags.join(", "), platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))]
    MissingPlatformTags {
        repository: String,
        tags: Vec<String>,
        platforms: Vec<Platform>,
    },
    #[error("its identity tags name different images in {repository}: {}", tags.iter().map(|(t, d)| format!("{t} → {d}")).collect::<Vec<_>>().join(", "))]
    Split {
        repository: String,
        tags: Vec<(String, String)>,
    },
    #[error("the image its identity tag names is not trusted: {0}")]
    Untrusted(Distrust),
    #[error("{0}")]
    Registry(Error),
    #[error("it has no identity tag template (one naming {{git_sha}} or {{git_short_sha}}), so no release of a commit can be found")]
    NoIdentity,
}

/// Finds every target's release of `commit`; every service at fault (by name) when one is.
/// Transient registry faults are retried (each retry told as an event).
pub async fn find(
    tagger: &Tagger<'_>,
    targets: &[ImageTarget],
    commit: &str,
) -> Result<BTreeMap<String, Found>, Vec<(String, Fault)>> {
    let looked = stream::iter(
        targets
            .iter()
            .map(|t| async move { (t.service.clone(), one(tagger, t, commit).await) }),
    )
    .buffer_unordered(LOOKUPS)
    .collect::<Vec<_>>()
    .await;
    let mut found = BTreeMap::new();
    let mut faults = Vec::new();
    for (service, r) in looked {
        match r {
            Ok(f) => {
                found.insert(service, f);
            }
            Err(fault) => faults.push((service, fault)),
        }
    }
    if faults.is_empty() {
        return Ok(found);
    }
    faults.sort_by(|a, b| a.0.cmp(&b.0));
    Err(faults)
}

async fn one(tagger: &Tagger<'_>, t: &ImageTarget, commit: &str) -> Result<Found, Fault> {
    if t.identity_tags.is_empty() {
        return Err(Fault::NoIdentity);
    }
    let api = tagger.api;
    let (repository, login) = tagger.repository(t).map_err(Fault::Registry)?;
    let mut named: Vec<(String, RawManifest)> = Vec::new();
    let mut missing = Vec::new();
    for tag in &t.identity_tags {
        match tagger.find(t, tag).await.map_err(Fault::Registry)? {
            Some(m) => named.push((tag.clone(), m)),
            None => missing.push(tag.clone()),
        }
    }
    if !missing.is_empty() {
        if t.is_multi_platform() {
            return from_platforms(tagger, t, commit, named, missing).await;
        }
        return Err(Fault::Missing {
            repository,
            tags: missing,
        });
    }
    let manifest = named[0].1.clone();
    if named.iter().any(|(_, m)| m.digest != manifest.digest) {
        return Err(Fault::Split {
            repository,
            tags: named.into_iter().map(|(t, m)| (t, m.digest)).collect(),
        });
    }
    let children = children(&manifest);
    let mut absent = Vec::new();
    for child in &children {
        let reference = format!("{repository}@{}", child.digest);
        let there = tagger
            .retried(&t.service, &format!("HEAD {reference}"), || {
                api.manifest_digest(&reference, login)
            })
            .await
            .map_err(Fault::Registry)?;
        if there.is_none() {
            absent.push(child.platform.clone());
        }
    }
    if !absent.is_empty() {
        return Err(Fault::MissingPlatforms {
            repository,
            digest: manifest.digest,
            platforms: absent,
        });
    }
    match trust::check_promoted(
        api,
        &repository,
        login,
        &manifest,
        &t.identity,
        commit,
        None,
    )
    .await
    .map_err(Fault::Registry)?
    {
        Verdict::Trusted { .. } => Ok(Found {
            manifest,
            unwritten: None,
        }),
        Verdict::Untrusted(why) => Err(Fault::Untrusted(why)),
    }
}

/// A multi-platform service without (all) its identity tags: the index its platform identity
/// tags make, each platform's image trusted, if every platform is there. Identity tags that
/// exist (an earlier promotion stopped half way) must already name that index.
async fn from_platforms(
    tagger: &Tagger<'_>,
    t: &ImageTarget,
    commit: &str,
    named: Vec<(String, RawManifest)>,
    missing: Vec<String>,
) -> Result<Found, Fault> {
    let (repository, login) = tagger.repository(t).map_err(Fault::Registry)?;
    let mut children = Vec::new();
    let mut absent = Vec::new();
    for platform in &t.platforms {
        let mut images: Vec<(String, RawManifest)> = Vec::new();
        for tag in t.platform_tags(platform) {
            match tagger.find(t, &tag).await.map_err(Fault::Registry)? {
                Some(m) => images.push((tag, m)),
                None => {
                    absent.push(platform.clone());
                    break;
                }
            }
        }
        if absent.last() == Some(platform) {
            continue;
        }
        let image = images[0].1.clone();
        if images.iter().any(|(_, m)| m.digest != image.digest) {
            return Err(Fault::Split {
                repository,
                tags: images.into_iter().map(|(t, m)| (t, m.digest)).collect(),
            });
        }
        let identity = t.identity.for_platform(platform);
        match trust::check_promoted(
            tagger.api,
            &repository,
            login,
            &image,
            &identity,
            commit,
            Some(platform),
        )
        .await
        .map_err(Fault::Registry)?
        {
            Verdict::Trusted { .. } => children.push(index::Child::of(&image, platform.clone())),
            Verdict::Untrusted(why) => return Err(Fault::Untrusted(why)),
        }
    }
    if !absent.is_empty() {
        return Err(Fault::MissingPlatformTags {
            repository,
            tags: missing,
            platforms: absent,
        });
    }
    let manifest = index::document(&children);
    if named.iter().any(|(_, m)| m.digest != manifest.digest) {
        let mut tags: Vec<(String, String)> =
            named.into_iter().map(|(t, m)| (t, m.digest)).collect();
        tags.extend(
            missing
                .into_iter()
                .map(|t| (t, format!("{} (its platforms' index)", manifest.digest))),
        );
        return Err(Fault::Split { repository, tags });
    }
    Ok(Found {
        manifest,
        unwritten: Some(Unwritten {
            children,
            tags: missing,
        }),
    })
}

/// One manifest an index names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub digest: String,
    /// `linux/arm64`, `linux/arm/v7`, or what the entry says it is (an attestation:
    /// `unknown/unknown`).
    pub platform: String,
}

/// The manifests an index names (none for an image manifest).
pub fn children(manifest: &RawManifest) -> Vec<Child> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: String,
        platform: Option<Platform>,
    }
    #[derive(serde::Deserialize)]
    struct Platform {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        variant: Option<String>,
    }
    let Ok(doc) = serde_json::from_slice::<Doc>(&manifest.bytes) else {
        return Vec::new();
    };
    doc.manifests
        .into_iter()
        .map(|e| Child {
            platform: match e.platform {
                Some(p) => match p.variant {
                    Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                    None => format!("{}/{}", p.os, p.architecture),
                },
                None => e.digest.clone(),
            },
            digest: e.digest,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_names_its_platform_images() {
        let index = RawManifest {
            bytes: bytes::Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
                {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"amd64"}},
                {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: "sha256:ii".into(),
        };
        let c = children(&index);
        assert_eq!(
            c,
            vec![
                Child {
                    digest: "sha256:aa".into(),
                    platform: "linux/amd64".into()
                },
                Child {
                    digest: "sha256:bb".into(),
                    platform: "linux/arm/v7".into()
                }
            ]
        );
        let image = RawManifest {
            bytes: bytes::Bytes::from_static(
                br#"{"schemaVersion":2,"config":{"digest":"sha256:cc","size":1},"layers":[]}"#,
            ),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: "sha256:dd".into(),
        };
        assert!(children(&image).is_empty());
    }

    #[test]
    fn faults_name_what_is_missing() {
        let f = Fault::Missing {
            repository: "h/shop/api".into(),
            tags: vec!["abc".into()],
        };
        assert_eq!(
            f.to_string(),
            "no identity tag abc in h/shop/api (its build or push did not land)"
        );
        let f = Fault::MissingPlatforms {
            repository: "h/shop/api".into(),
            digest: "sha256:ii".into(),
            platforms: vec!["linux/arm64".into()],
        };
        assert!(f.to_string().ends_with("linux/arm64"), "{f}");
        let f = Fault::MissingPlatformTags {
            repository: "h/shop/api".into(),
            tags: vec!["abc".into()],
            platforms: vec![
                Platform::parse("linux/arm64").unwrap(),
                Platform::parse("linux/arm/v7").unwrap(),
            ],
        };
        assert_eq!(
            f.to_string(),
            "no identity tag abc in h/shop/api, and no platform identity tag for linux/arm64, linux/arm/v7 (their platforms' builds or pushes did not land)"
        );
    }
}
