//! The skip decision: the services whose image, by input digest, the target repository
//! already holds under its inputs tag are tagged there instead of built. A service another
//! one builds `FROM` keeps its image too when that one must be built: the daemon gets the
//! base's image as it is ([`super::local`]), and only when that fails is the base built. A
//! service the registry could not be asked about for a passing reason is built.
//!
//! Every target repository is asked something before anything is built, skip or not — the
//! inputs tag, or the first tag the release will write — so that a registry that cannot be
//! reached, or refuses the credentials, stops the release before any build time is spent.
//!
//! An image found under an inputs tag is reused only when the trust check passes
//! ([`crate::trust`]): anyone who can push could have planted it there. Otherwise the service
//! is built, and a warning names the tag and why.

use super::local::{bring_into_daemon, BaseImage, LocalBase};
use super::tagger::Tagger;
use super::ReleaseError;
use crate::api::RawManifest;
use crate::events::ServiceEvent;
use crate::target::ImageTarget;
use crate::trust::{Expected, Verdict};
use std::collections::{HashMap, HashSet};

/// A service's input digest, as the skip decision looks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputsDigest {
    /// The digest (hex), as the image's inputs label carries it.
    pub hex: String,
    /// The tag that names an image of these inputs in the registry.
    pub tag: String,
}

/// What the skip decision knows of the services.
#[derive(Debug, Clone, Default)]
pub struct SkipInputs {
    /// The input digest of each service that may be skipped (its inputs are known and the
    /// run allows skipping).
    pub inputs: HashMap<String, InputsDigest>,
    /// The image label that carries the input digest.
    pub inputs_label: String,
    /// The services each service builds `FROM`.
    pub builds_from: HashMap<String, Vec<String>>,
    /// For a multi-platform service (whose inputs digest is its index's): each platform's
    /// input digest (hex), which that platform's image carries in its label.
    pub platform_inputs: HashMap<String, HashMap<crate::index::Platform, String>>,
}

pub(super) async fn unchanged(
    tagger: &Tagger<'_>,
    targets: &[ImageTarget],
    inputs: &SkipInputs,
) -> Result<HashMap<String, RawManifest>, ReleaseError> {
    let lookups = targets.iter().filter_map(|t| {
        let (tag, may_skip) = match inputs.inputs.get(&t.service) {
            Some(d) => (d.tag.clone(), true),
            None => (
                t.identity_tags.iter().chain(&t.moving_tags).next()?.clone(),
                false,
            ),
        };
        Some(async move { (t, may_skip, tagger.find(t, &tag).await) })
    });
    let found = futures_util::future::join_all(lookups).await;
    let mut unchanged = HashMap::new();
    let mut refused = Vec::new();
    for (t, may_skip, r) in found {
        match r {
            Ok(Some(m)) if may_skip => {
                unchanged.insert(t.service.clone(), m);
            }
            Ok(_) => {}
            Err(e) if e.is_unusable_registry() => refused.push((t.service.clone(), e)),
            Err(e) => tagger.events.service(ServiceEvent::Warning {
                service: t.service.clone(),
                message: format!("cannot look for an image of the same inputs ({e}); building it"),
            }),
        }
    }
    if !refused.is_empty() {
        return Err(ReleaseError::Unusable(refused));
    }
    Ok(keep_trusted(tagger, targets, inputs, unchanged).await)
}

/// Brings into the daemon each unchanged service that a service being built builds `FROM`,
/// under `names` (service → the local names its dependents use). One that cannot be brought
/// in is built after all, with a warning, and leaves `unchanged` (its own unchanged bases are
/// then needed in turn).
pub(super) async fn bases_into_daemon(
    tagger: &Tagger<'_>,
    targets: &[ImageTarget],
    inputs: &SkipInputs,
    unchanged: &mut HashMap<String, RawManifest>,
    names: &HashMap<String, Vec<String>>,
) {
    let mut local: HashSet<String> = HashSet::new();
    loop {
        let needed: Vec<(String, String)> = needed_bases(unchanged, &inputs.builds_from)
            .into_iter()
            .filter(|(base, _)| !local.contains(base))
            .collect();
        if needed.is_empty() {
            return;
        }
        for (base, user) in needed {
            let Some(manifest) = unchanged.get(&base) else {
                continue;
            };
            if local.contains(&base) {
                continue;
            }
            let brought = match (
                targets.iter().find(|t| t.service == base),
                inputs.inputs.get(&base),
            ) {
                (Some(target), Some(digest)) => match tagger.repository(target) {
                    Ok((repository, login)) => {
                        let image = BaseImage {
                            repository: &repository,
                            manifest,
                            inputs_label: &inputs.inputs_label,
                            inputs: &digest.hex,
                            names: names.get(&base).map_or(&[][..], Vec::as_slice),
                        };
                        bring_into_daemon(tagger.docker, image, login)
                            .await
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                },
                _ => Err("its release target or inputs are not known".to_string()),
            };
            match brought {
                Ok(origin) => {
                    let from = match origin {
                        LocalBase::Daemon { id } => format!("the daemon's image {id}"),
                        LocalBase::Pulled { reference } => format!("pulled {reference}"),
                    };
                    tracing::info!(service = %base, "unchanged, and `{user}` builds FROM it: {from}");
                    local.insert(base);
                }
                Err(e) => {
                    tagger.events.service(ServiceEvent::Warning {
                        service: base.clone(),
                        message: format!(
                            "`{user}` builds FROM it, and its unchanged image cannot be had in the daemon ({e}); building it"
                        ),
                    });
                    unchanged.remove(&base);
                }
            }
        }
    }
}

/// The candidates (service → the manifest its inputs tag names) that the registry shows a
/// release made; the others are left out, each with a warning.
async fn keep_trusted(
    tagger: &Tagger<'_>,
    targets: &[ImageTarget],
    inputs: &SkipInputs,
    candidates: HashMap<String, RawManifest>,
) -> HashMap<String, RawManifest> {
    let checks = candidates.into_iter().filter_map(|(service, candidate)| {
        let target = targets.iter().find(|t| t.service == service)?;
        let digest = inputs.inputs.get(&service)?;
        Some(async move {
            let expected = Expected {
                inputs_label: &inputs.inputs_label,
                inputs: &digest.hex,
                identity: &target.identity,
                platform: None,
                platform_inputs: inputs.platform_inputs.get(&service),
            };
            let verdict = match tagger.repository(target) {
                Ok((repository, login)) => {
                    crate::trust::check(tagger.api, &repository, login, &candidate, &expected).await
                }
                Err(e) => Err(e),
            };
            let tag = format!(
                "{}:{}",
                target.repository_ref().unwrap_or_default(),
                digest.tag
            );
            (target, candidate, tag, verdict)
        })
    });
    let mut kept = HashMap::new();
    for (target, candidate, tag, verdict) in futures_util::future::join_all(checks).await {
        let service = target.service.clone();
        match verdict {
            Ok(Verdict::Trusted { revision, tag }) => {
                tracing::info!(%service, "reusing the image of commit {revision} (its tag {tag})");
                kept.insert(service, candidate);
            }
            Ok(Verdict::Untrusted(why)) => tagger.events.service(ServiceEvent::Warning {
                service,
                message: format!("the image under {tag} is not reused: {why}; building it"),
            }),
            Err(e) => tagger.events.service(ServiceEvent::Warning {
                service,
                message: format!("cannot check the image under {tag} ({e}); building it"),
            }),
        }
    }
    kept
}

/// The unchanged services a service that is built builds `FROM` (base, the user), in a fixed
/// order: the daemon needs their images.
fn needed_bases<T>(
    unchanged: &HashMap<String, T>,
    builds_from: &HashMap<String, Vec<String>>,
) -> Vec<(String, String)> {
    let mut needed: Vec<(String, String)> = builds_from
        .iter()
        .filter(|(user, _)| !unchanged.contains_key(*user))
        .flat_map(|(user, bases)| {
            bases
                .iter()
                .filter(|b| unchanged.contains_key(*b))
                .map(move |b| (b.clone(), user.clone()))
        })
        .collect();
    needed.sort();
    needed.dedup_by(|a, b| a.0 == b.0);
    needed
}

/// One platform's image a multi-platform service may reuse: its input digest, looked for under
/// its inputs tag.
#[derive(Debug, Clone)]
pub struct PlatformCandidate {
    pub service: String,
    pub platform: crate::index::Platform,
    pub inputs: InputsDigest,
}

/// The platforms' images the target repositories already hold by input digest, checked as
/// [`unchanged`] checks a service's (with the platform identity tags). Lookups that fail are
/// warned about and the platform is built.
pub(super) async fn unchanged_platforms(
    tagger: &Tagger<'_>,
    targets: &[ImageTarget],
    inputs_label: &str,
    candidates: &[PlatformCandidate],
) -> HashMap<(String, crate::index::Platform), RawManifest> {
    let checks = candidates.iter().filter_map(|c| {
        let target = targets.iter().find(|t| t.service == c.service)?;
        Some(async move {
            let verdict = async {
                let Some(found) = tagger.find(target, &c.inputs.tag).await? else {
                    return Ok(None);
                };
                let (repository, login) = tagger.repository(target)?;
                let expected = Expected {
                    inputs_label,
                    inputs: &c.inputs.hex,
                    identity: &target.identity,
                    platform: Some(&c.platform),
                    platform_inputs: None,
                };
                let v =
                    crate::trust::check(tagger.api, &repository, login, &found, &expected).await?;
                Ok::<_, crate::Error>(Some((found, v)))
            }
            .await;
            (c, verdict)
        })
    });
    let mut kept = HashMap::new();
    for (c, verdict) in futures_util::future::join_all(checks).await {
        match verdict {
            Ok(None) => {}
            Ok(Some((found, Verdict::Trusted { .. }))) => {
                kept.insert((c.service.clone(), c.platform.clone()), found);
            }
            Ok(Some((_, Verdict::Untrusted(why)))) => {
                tagger.events.service(ServiceEvent::Warning {
                    service: c.service.clone(),
                    message: format!(
                        "the {} image under {} is not reused: {why}; building it",
                        c.platform, c.inputs.tag
                    ),
                })
            }
            Err(e) => tagger.events.service(ServiceEvent::Warning {
                service: c.service.clone(),
                message: format!(
                    "cannot look for a {} image of the same inputs ({e}); building it",
                    c.platform
                ),
            }),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_needs_the_unchanged_bases_of_builds_only() {
        let mut unchanged: HashMap<String, ()> = ["base", "mid", "other"]
            .into_iter()
            .map(|s| (s.to_string(), ()))
            .collect();
        // top builds FROM mid, mid FROM base; top changed: the daemon needs mid's image (which
        // holds base's layers), not base's.
        let from: HashMap<String, Vec<String>> = [
            ("top".to_string(), vec!["mid".to_string()]),
            ("mid".to_string(), vec!["base".to_string()]),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            needed_bases(&unchanged, &from),
            [("mid".to_string(), "top".to_string())]
        );
        // mid cannot be had, so it is built: now base is needed.
        unchanged.remove("mid");
        assert_eq!(
            needed_bases(&unchanged, &from),
            [("base".to_string(), "mid".to_string())]
        );
    }

    #[test]
    fn unchanged_services_keep_their_unchanged_bases() {
        let unchanged: HashMap<String, ()> = ["base", "top"]
            .into_iter()
            .map(|s| (s.to_string(), ()))
            .collect();
        let from: HashMap<String, Vec<String>> = [("top".to_string(), vec!["base".to_string()])]
            .into_iter()
            .collect();
        assert!(needed_bases(&unchanged, &from).is_empty());
    }
}
