//! A service's last release as the cache source of its build.
//!
//! A fresh CI runner has no build cache: every step of a changed service would run again.
//! Images are built with inline cache metadata, so the last release in the registry can serve
//! as BuildKit's cache (`cache_from`): its moving tags (`latest`) and the identity tags of the
//! previous commit. Each one is used only when the trust check vouches that a release made it
//! ([`crate::trust::check_released`]): layers are taken from a cache source without rebuilding,
//! so an image someone planted under `latest` must not become one.

use super::tagger::Tagger;
use crate::events::ServiceEvent;
use crate::target::ImageTarget;
use crate::trust::Verdict;

/// The tags a build of `target` may take its cache from, in its repository: its moving tags,
/// then the identity tags of `previous` (the commit before this one, when known).
pub fn candidate_tags(target: &ImageTarget, previous: Option<&str>) -> Vec<String> {
    let previous_tags = previous.map(|sha| target.identity.for_commit(sha));
    let mut out: Vec<String> = Vec::new();
    for tag in target
        .moving_tags
        .iter()
        .chain(previous_tags.iter().flatten())
    {
        if !out.contains(tag) {
            out.push(tag.clone());
        }
    }
    out
}

/// The references of [`candidate_tags`] that exist and pass the trust check; the others are
/// said as a warning (planted or foreign) or left out quietly (missing: a first release).
pub(super) async fn trusted(
    tagger: &Tagger<'_>,
    target: &ImageTarget,
    previous: Option<&str>,
) -> Vec<String> {
    let Ok((repository, login)) = tagger.repository(target) else {
        return Vec::new();
    };
    let checks = candidate_tags(target, previous).into_iter().map(|tag| {
        let repository = repository.clone();
        async move {
            let reference = format!("{repository}:{tag}");
            let verdict = match tagger.find(target, &tag).await {
                Ok(Some(manifest)) => crate::trust::check_released(
                    tagger.api,
                    &repository,
                    login,
                    &manifest,
                    &target.identity,
                )
                .await
                .map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            (reference, verdict)
        }
    });
    let mut out = Vec::new();
    for (reference, verdict) in futures_util::future::join_all(checks).await {
        match verdict {
            Ok(Some(Verdict::Trusted { .. })) => out.push(reference),
            Ok(None) => {}
            Ok(Some(Verdict::Untrusted(why))) => tagger.events.service(ServiceEvent::Warning {
                service: target.service.clone(),
                message: format!("{reference} is not used as a cache source: {why}"),
            }),
            Err(e) => tagger.events.service(ServiceEvent::Warning {
                service: target.service.clone(),
                message: format!("{reference} is not used as a cache source ({e})"),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    #[test]
    fn moving_tags_then_the_previous_commits_identity_tags() {
        let identity = [Template::parse("{git_sha}", crate::template::TAG_PLACEHOLDERS).unwrap()];
        let target = ImageTarget {
            service: "api".into(),
            local_image: "shop-api".into(),
            host: Some("r.example.com".into()),
            registry: crate::registry::Registry::parse("r.example.com").unwrap(),
            repository: "shop/api".into(),
            identity_tags: vec!["b".repeat(40)],
            moving_tags: vec!["latest".into()],
            required: true,
            identity: crate::target::IdentityTemplates::capture(&identity, &|_| None),
            platforms: Vec::new(),
            partial: false,
        };
        let previous = "a".repeat(40);
        assert_eq!(
            candidate_tags(&target, Some(&previous)),
            ["latest".to_string(), previous]
        );
        assert_eq!(candidate_tags(&target, None), ["latest".to_string()]);
    }
}
