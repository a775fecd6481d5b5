//! Whether an image wharf did not build in this run may be released as if it had: the image a
//! `wharf-inputs-<digest>` tag names, before wharf tags it `{git_sha}` and `latest` instead of
//! building.
//!
//! Anyone who may push to the repository can push an image under an inputs tag (the digests
//! are printed by `wharf plan`), so the tag alone proves nothing. The image is trusted only when
//! the registry itself shows that a release made it, checked there alone (a CI checkout is
//! shallow and may run no git at all):
//! - its config (every platform's config, for an index) carries the expected inputs label;
//! - the config names one commit in `org.opencontainers.image.revision`;
//! - that commit's identity tag in the same repository — the project's identity templates
//!   rendered for the commit; for one platform's image of a multi-platform release, that
//!   platform's identity tag (`<tag>-linux-arm64`) — names this very manifest.
//!
//! One manifest lookup per identity template, no history. What this does not stop: someone who
//! can push to the repository and pushes both an inputs tag and a matching identity tag (for a
//! real commit whose tag is still free, or a made-up one). Only signatures, checked against a
//! key such a pusher does not hold, would.

use crate::api::{RawManifest, RegistryApi};
use crate::login::Login;
use crate::target::IdentityTemplates;
use crate::Error;
use std::collections::BTreeMap;

/// The OCI label naming the commit an image was built from (wharf sets it on every build).
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// The largest config blob read: a real one is a few KB; a bigger one is not read at all.
pub const MAX_CONFIG: usize = 4 * 1024 * 1024;

/// The most platform images of an index that are checked (each is a lookup).
pub const MAX_PLATFORMS: usize = 64;

const IMAGE_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];
const INDEX_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

pub use wharf_compose::platform::Platform;

/// What a reused image must show.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The label carrying the input digest (the builder's `dev.wharf.inputs`).
    pub inputs_label: &'a str,
    /// Its value: the input digest of this build.
    pub inputs: &'a str,
    /// The service's identity tags, for any commit.
    pub identity: &'a IdentityTemplates,
    /// `Some` when the candidate is one platform's image of a multi-platform release: its
    /// identity tags carry the platform.
    pub platform: Option<&'a Platform>,
    /// For an index whose platforms each have their own input digest: each platform's (then
    /// `inputs` is the index's, which no config carries).
    pub platform_inputs: Option<&'a std::collections::HashMap<Platform, String>>,
}

/// The outcome of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A release of `revision` tagged this very image `tag`.
    Trusted {
        revision: String,
        tag: String,
    },
    Untrusted(Distrust),
}

/// Why an image is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    #[error("it is not an image or an index of images ({media_type})")]
    NotAnImage { media_type: String },
    #[error("the index names no platform image")]
    NoPlatforms,
    #[error("the index names more than {MAX_PLATFORMS} platform images")]
    TooManyPlatforms,
    #[error("its config is larger than {MAX_CONFIG} bytes")]
    ConfigTooLarge,
    #[error("its config has no {label} label")]
    NoInputsLabel { label: String },
    #[error("its {label} label is `{found}`, not these inputs")]
    OtherInputs { label: String, found: String },
    #[error("its config names no commit (no {REVISION_LABEL} label)")]
    NoRevision,
    #[error("its {REVISION_LABEL} label `{value}` is not a full commit id")]
    BadRevision { value: String },
    #[error("its platform images name different commits ({first} and {second})")]
    MixedRevisions { first: String, second: String },
    #[error("no identity tag of its commit {revision} can be known from the tag templates (a release without an identity tag such as {{git_sha}}, or one whose templates use {{timestamp}}, cannot vouch for an image)")]
    NoIdentityTag { revision: String },
    #[error("the identity tag {tag} of its commit does not exist")]
    IdentityMissing { tag: String },
    #[error("the identity tag {tag} of its commit names another image ({digest})")]
    IdentityElsewhere { tag: String, digest: String },
    #[error("its config names commit {found}, not {expected}")]
    OtherCommit { found: String, expected: String },
    #[error("it is an image for {found}, not {expected}")]
    OtherPlatform { expected: Platform, found: String },
}

#[derive(serde::Deserialize)]
struct ManifestDoc {
    config: Option<Descriptor>,
    manifests: Option<Vec<IndexEntry>>,
}

#[derive(serde::Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    size: u64,
}

#[derive(serde::Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    platform: Option<EntryPlatform>,
}

#[derive(serde::Deserialize)]
struct EntryPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
}

impl EntryPlatform {
    fn platform(&self) -> Option<Platform> {
        let text = match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        };
        Platform::parse(&text).ok()
    }
}

impl IndexEntry {
    /// BuildKit's provenance and SBOM manifests sit in an index beside the images.
    fn is_attestation(&self) -> bool {
        self.annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
            || self.platform.as_ref().is_some_and(|p| p.os == "unknown")
    }
}

#[derive(serde::Deserialize)]
struct ConfigDoc {
    config: Option<ConfigSection>,
    #[serde(flatten)]
    platform: EntryPlatform,
}

#[derive(serde::Deserialize)]
struct ConfigSection {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

fn unreadable(repository: &str, what: &str, e: serde_json::Error) -> Error {
    Error::Registry {
        registry: repository.to_string(),
        message: format!("{what} is not valid JSON: {e}"),
        fault: crate::error::Fault::permanent(),
    }
}

/// The config descriptor of an image manifest.
fn config_of(repository: &str, manifest: &RawManifest) -> Result<Descriptor, Error> {
    let doc: ManifestDoc = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| unreadable(repository, &manifest.digest, e))?;
    doc.config.ok_or_else(|| Error::Registry {
        registry: repository.to_string(),
        message: format!("the image manifest {} names no config", manifest.digest),
        fault: crate::error::Fault::permanent(),
    })
}

impl EntryPlatform {
    /// Refuses an image whose config names another platform than the one it is taken for
    /// (its platform identity tag, or its index entry): an index must never send an arm64
    /// host an amd64 image. A variant counts only where the config writes one, as builders
    /// of one architecture often leave it out.
    fn check(&self, expected: Option<&Platform>) -> Result<(), Distrust> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let found = self.platform();
        let alike = found.as_ref().is_some_and(|f| {
            f.os == expected.os
                && f.architecture == expected.architecture
                && (f.variant.is_none()
                    || expected.variant.is_none()
                    || f.variant == expected.variant)
        });
        if alike {
            return Ok(());
        }
        Err(Distrust::OtherPlatform {
            expected: expected.clone(),
            found: found.map_or_else(|| "no platform".to_string(), |f| f.to_string()),
        })
    }
}

/// The labels of the config `descriptor` names, or why they are not read: among them, that
/// the config names another platform than `platform` (see [`EntryPlatform::check`]).
async fn labels(
    api: &RegistryApi,
    repository: &str,
    login: Option<&Login>,
    descriptor: &Descriptor,
    platform: Option<&Platform>,
) -> Result<Result<BTreeMap<String, String>, Distrust>, Error> {
    if descriptor.size > MAX_CONFIG as u64 {
        return Ok(Err(Distrust::ConfigTooLarge));
    }
    let blob = api
        .blob(repository, &descriptor.digest, MAX_CONFIG, login)
        .await?;
    let doc: ConfigDoc =
        serde_json::from_slice(&blob).map_err(|e| unreadable(repository, &descriptor.digest, e))?;
    Ok(doc
        .platform
        .check(platform)
        .map(|()| doc.config.and_then(|c| c.labels).unwrap_or_default()))
}

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `candidate`, found in `repository` (`host/repo`), may be released as the image of
/// `expected`. `Err` when the registry could not be asked (the caller builds then too).
pub async fn check(
    api: &RegistryApi,
    repository: &str,
    login: Option<&Login>,
    candidate: &RawManifest,
    expected: &Expected<'_>,
) -> Result<Verdict, Error> {
    let inputs = Some((expected.inputs_label, expected.inputs));
    verdict(
        api,
        repository,
        login,
        candidate,
        inputs,
        expected.platform_inputs,
        expected.identity,
        expected.platform,
    )
    .await
}

/// Whether `candidate`, found in `repository`, is an image a release of the service made,
/// whatever its inputs: the same check without the inputs label, for an image a build may
/// take as its cache source (BuildKit would otherwise take layers anyone who can push there
/// planted under a moving tag).
pub async fn check_released(
    api: &RegistryApi,
    repository: &str,
    login: Option<&Login>,
    candidate: &RawManifest,
    identity: &IdentityTemplates,
) -> Result<Verdict, Error> {
    verdict(
        api, repository, login, candidate, None, None, identity, None,
    )
    .await
}

/// The platform images of the index `candidate` (attestations left out), each fetched from
/// `repository`, refused unless it is an image, and passed to `each` in the index's order;
/// the first distrust, whether of the index, of an image or from `each`, ends the walk, so a
/// later platform image is never fetched for an index already refused.
async fn index_images<T>(
    api: &RegistryApi,
    repository: &str,
    login: Option<&Login>,
    candidate: &RawManifest,
    mut each: impl FnMut(&IndexEntry, RawManifest) -> Result<Result<T, Distrust>, Error>,
) -> Result<Result<Vec<T>, Distrust>, Error> {
    let doc: ManifestDoc = serde_json::from_slice(&candidate.bytes)
        .map_err(|e| unreadable(repository, &candidate.digest, e))?;
    let entries: Vec<IndexEntry> = doc
        .manifests
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.is_attestation())
        .collect();
    if entries.is_empty() {
        return Ok(Err(Distrust::NoPlatforms));
    }
    if entries.len() > MAX_PLATFORMS {
        return Ok(Err(Distrust::TooManyPlatforms));
    }
    let mut images = Vec::with_capacity(entries.len());
    for entry in &entries {
        let reference = format!("{repository}@{}", entry.digest);
        let image = api
            .manifest(&reference, login)
            .await?
            .ok_or(Error::NotFound { reference })?;
        if !IMAGE_TYPES.contains(&image.media_type.as_str()) {
            return Ok(Err(Distrust::NotAnImage {
                media_type: image.media_type,
            }));
        }
        match each(entry, image)? {
            Ok(t) => images.push(t),
            Err(d) => return Ok(Err(d)),
        }
    }
    Ok(Ok(images))
}

/// The check; `inputs`: the label and the value the configs must carry, when they must.
#[allow(clippy::too_many_arguments)]
async fn verdict(
    api: &RegistryApi,
    repository: &str,
    login: Option<&Login>,
    candidate: &RawManifest,
    inputs: Option<(&str, &str)>,
    platform_inputs: Option<&std::collections::HashMap<Platform, String>>,
    identity: &IdentityTemplates,
    platform: Option<&Platform>,
) -> Result<Verdict, Error> {
    let untrusted = |d| Ok(Verdict::Untrusted(d));
    let media_type = candidate.media_type.as_str();
    let is_index = INDEX_TYPES.contains(&media_type);
    let configs = if IMAGE_TYPES.contains(&media_type) {
        vec![(
            config_of(repository, candidate)?,
            inputs.map(|(l, v)| (l, v.to_string())),
            platform.cloned(),
        )]
    } else if is_index {
        let configs = index_images(api, repository, login, candidate, |entry, image| {
            let inputs = match (inputs, platform_inputs) {
                (None, _) => None,
                (Some((l, v)), None) => Some((l, v.to_string())),
                (Some((l, _)), Some(each)) => {
                    match entry.platform.as_ref().and_then(EntryPlatform::platform) {
                        Some(p) => match each.get(&p) {
                            Some(hex) => Some((l, hex.clone())),
                            None => {
                                return Ok(Err(Distrust::NotAnImage {
                                    media_type: format!(
                                "an index with the platform {p}, which this release does not build"
                            ),
                                }))
                            }
                        },
                        None => return Ok(Err(Distrust::NoPlatforms)),
                    }
                }
            };
            let platform = entry.platform.as_ref().and_then(EntryPlatform::platform);
            Ok(Ok((config_of(repository, &image)?, inputs, platform)))
        })
        .await?;
        match configs {
            Ok(c) => c,
            Err(d) => return untrusted(d),
        }
    } else {
        return untrusted(Distrust::NotAnImage {
            media_type: media_type.to_string(),
        });
    };

    let mut revision: Option<String> = None;
    for (descriptor, inputs, platform) in &configs {
        let labels = match labels(api, repository, login, descriptor, platform.as_ref()).await? {
            Ok(l) => l,
            Err(d) => return untrusted(d),
        };
        if let Some((label, expected)) = inputs {
            let label: &str = label;
            let expected: &str = expected;
            match labels.get(label) {
                None => {
                    return untrusted(Distrust::NoInputsLabel {
                        label: label.to_string(),
                    })
                }
                Some(found) if found != expected => {
                    return untrusted(Distrust::OtherInputs {
                        label: label.to_string(),
                        found: found.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        let Some(this) = labels.get(REVISION_LABEL) else {
            return untrusted(Distrust::NoRevision);
        };
        match &revision {
            Some(first) if first != this => {
                return untrusted(Distrust::MixedRevisions {
                    first: first.clone(),
                    second: this.clone(),
                })
            }
            _ => revision = Some(this.clone()),
        }
    }
    let revision = revision.ok_or(Distrust::NoRevision);
    let revision = match revision {
        Ok(r) if is_full_sha(&r) => r,
        Ok(r) => return untrusted(Distrust::BadRevision { value: r }),
        Err(d) => return untrusted(d),
    };

    let mut tags = identity.for_commit(&revision);
    if let (Some(platform), false) = (platform, is_index) {
        let suffix = platform.tag_suffix();
        tags = tags.into_iter().map(|t| format!("{t}-{suffix}")).collect();
    }
    if tags.is_empty() {
        return untrusted(Distrust::NoIdentityTag { revision });
    }
    let mut first_miss = None;
    for tag in tags {
        let served = api
            .manifest_digest(&format!("{repository}:{tag}"), login)
            .await?;
        match served {
            Some(d) if d == candidate.digest => return Ok(Verdict::Trusted { revision, tag }),
            Some(digest) => {
                first_miss.get_or_insert(Distrust::IdentityElsewhere { tag, digest });
            }
            None => {
                first_miss.get_or_insert(Distrust::IdentityMissing { tag });
            }
        }
    }
    untrusted(first_miss.expect("at least one identity tag was looked up"))
}

/// Whether `candidate`, which an identity tag of `commit` names in `repository`, may be
/// promoted as that commit's release (`wharf promote`, which builds nothing and so knows no
/// input digest): the config of the image — of every platform image, for an index — must
/// name `commit` in its revision label, and an identity tag of `commit` must name this very
/// manifest. An identity tag pushed by hand onto another commit's image is refused, and so
/// is an image whose config names another platform than `platform` (the one its platform
/// identity tag names) or, in an index, than its entry.
pub async fn check_promoted(
    api: &RegistryApi,
    repository: &str,
    login: Option<&Login>,
    candidate: &RawManifest,
    identity: &IdentityTemplates,
    commit: &str,
    platform: Option<&Platform>,
) -> Result<Verdict, Error> {
    let untrusted = |d| Ok(Verdict::Untrusted(d));
    let media_type = candidate.media_type.as_str();
    let images = if IMAGE_TYPES.contains(&media_type) {
        vec![(candidate.clone(), platform.cloned())]
    } else if INDEX_TYPES.contains(&media_type) {
        let each = |entry: &IndexEntry, image| {
            Ok(Ok((
                image,
                entry.platform.as_ref().and_then(EntryPlatform::platform),
            )))
        };
        match index_images(api, repository, login, candidate, each).await? {
            Ok(images) => images,
            Err(d) => return untrusted(d),
        }
    } else {
        return untrusted(Distrust::NotAnImage {
            media_type: media_type.to_string(),
        });
    };
    for (image, platform) in &images {
        let descriptor = config_of(repository, image)?;
        let labels = match labels(api, repository, login, &descriptor, platform.as_ref()).await? {
            Ok(l) => l,
            Err(d) => return untrusted(d),
        };
        match labels.get(REVISION_LABEL) {
            None => return untrusted(Distrust::NoRevision),
            Some(r) if !r.eq_ignore_ascii_case(commit) => {
                return untrusted(Distrust::OtherCommit {
                    found: r.clone(),
                    expected: commit.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    for tag in identity.for_commit(commit) {
        let served = api
            .manifest_digest(&format!("{repository}:{tag}"), login)
            .await?;
        if served.as_deref() == Some(candidate.digest.as_str()) {
            return Ok(Verdict::Trusted {
                revision: commit.to_string(),
                tag,
            });
        }
    }
    untrusted(Distrust::NoIdentityTag {
        revision: commit.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_taken_only_for_the_platform_its_config_names() {
        let config = |json: &str| serde_json::from_str::<ConfigDoc>(json).unwrap().platform;
        let p = |s: &str| Platform::parse(s).unwrap();
        let arm = config(r#"{"os":"linux","architecture":"arm64","variant":"v8","config":{}}"#);
        assert_eq!(arm.check(Some(&p("linux/arm64"))), Ok(()));
        assert_eq!(arm.check(None), Ok(()));
        assert_eq!(
            arm.check(Some(&p("linux/amd64"))),
            Err(Distrust::OtherPlatform {
                expected: p("linux/amd64"),
                found: "linux/arm64".into()
            })
        );
        // A variant counts where both name one.
        let amd = config(r#"{"os":"linux","architecture":"amd64"}"#);
        assert_eq!(amd.check(Some(&p("linux/amd64/v3"))), Ok(()));
        let arm6 = config(r#"{"os":"linux","architecture":"arm","variant":"v6"}"#);
        assert!(arm6.check(Some(&p("linux/arm/v7"))).is_err());
        let none = config(r#"{"config":{}}"#);
        assert_eq!(
            none.check(Some(&p("linux/amd64"))),
            Err(Distrust::OtherPlatform {
                expected: p("linux/amd64"),
                found: "no platform".into()
            })
        );
    }

    #[test]
    fn platforms_name_their_identity_tags() {
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(arm.tag_suffix(), "linux-arm64");
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().tag_suffix(),
            "linux-arm-v7"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/arm/v7/x").is_err());
    }

    #[test]
    fn attestations_are_not_platform_images() {
        let entry: IndexEntry = serde_json::from_str(
            r#"{"digest":"sha256:00","platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}"#,
        )
        .unwrap();
        assert!(entry.is_attestation());
        let image: IndexEntry = serde_json::from_str(
            r#"{"digest":"sha256:00","platform":{"os":"linux","architecture":"arm64"}}"#,
        )
        .unwrap();
        assert!(!image.is_attestation());
    }
}
