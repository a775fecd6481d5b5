//! The skip decision: the services whose image, by input digest, the target repository
//! already holds under its inputs tag are tagged there instead of built. A service another
//! one builds `FROM` is built anyway when that one must be built (the daemon needs the base
//! image), and so is one the registry could not be asked about for a passing reason.
//!
//! Every target repository is asked something before anything is built, skip or not — the
//! inputs tag, or the first tag the release will write — so that a registry that cannot be
//! reached, or refuses the credentials, stops the release before any build time is spent.

use super::tagger::Tagger;
use super::ReleaseError;
use crate::api::RawManifest;
use crate::events::ServiceEvent;
use crate::target::ImageTarget;
use std::collections::HashMap;

/// What the skip decision knows of one service.
#[derive(Debug, Clone, Default)]
pub struct SkipInputs {
    /// The inputs tag of each service that may be skipped (its inputs are known and the run
    /// allows skipping).
    pub inputs_tags: HashMap<String, String>,
    /// The services each service builds `FROM`.
    pub builds_from: HashMap<String, Vec<String>>,
}

pub(super) async fn unchanged(
    tagger: &Tagger<'_>,
    targets: &[ImageTarget],
    inputs: &SkipInputs,
) -> Result<HashMap<String, RawManifest>, ReleaseError> {
    let lookups = targets.iter().filter_map(|t| {
        let (tag, may_skip) = match inputs.inputs_tags.get(&t.service) {
            Some(tag) => (tag.clone(), true),
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
    Ok(keep_bases_of_builds(unchanged, &inputs.builds_from))
}

/// Drops from `unchanged` every service a service that is built builds `FROM`, until none is
/// left (a base dropped may itself be the dependent of another base).
fn keep_bases_of_builds<T>(
    mut unchanged: HashMap<String, T>,
    builds_from: &HashMap<String, Vec<String>>,
) -> HashMap<String, T> {
    loop {
        let needed: Vec<(String, String)> = builds_from
            .iter()
            .filter(|(user, _)| !unchanged.contains_key(*user))
            .flat_map(|(user, bases)| {
                bases
                    .iter()
                    .filter(|b| unchanged.contains_key(*b))
                    .map(move |b| (b.clone(), user.clone()))
            })
            .collect();
        if needed.is_empty() {
            return unchanged;
        }
        for (base, user) in needed {
            if unchanged.remove(&base).is_some() {
                tracing::info!(service = %base, "built although unchanged: `{user}` builds FROM its image");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_is_built_when_a_service_built_from_it_is() {
        let unchanged: HashMap<String, ()> = ["base", "mid", "other"]
            .into_iter()
            .map(|s| (s.to_string(), ()))
            .collect();
        // top builds FROM mid, mid FROM base; top changed, so mid and base are built too.
        let from: HashMap<String, Vec<String>> = [
            ("top".to_string(), vec!["mid".to_string()]),
            ("mid".to_string(), vec!["base".to_string()]),
        ]
        .into_iter()
        .collect();
        let kept = keep_bases_of_builds(unchanged, &from);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["other"]);
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
        assert_eq!(keep_bases_of_builds(unchanged, &from).len(), 2);
    }
}
