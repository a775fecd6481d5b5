//! Images wharf did not build in this run, checked before they are released as if it had: an
//! image found under a service's inputs tag is reused only when the trust check passes (see
//! [`wharf_pusher::trust`]); otherwise the service is built, and a warning names the tag.

use crate::progress::Reporter;
use std::collections::HashMap;
use wharf_builder::inputs::Inputs;
use wharf_pusher::api::RawManifest;
use wharf_pusher::release::Pusher;
use wharf_pusher::target::ImageTarget;
use wharf_pusher::trust::{Expected, Verdict};

/// What the trust check needs to know of a service's build.
pub fn expected<'a>(target: &'a ImageTarget, inputs_hex: &'a str) -> Expected<'a> {
    Expected {
        inputs_label: wharf_builder::inputs::LABEL,
        inputs: inputs_hex,
        identity: &target.identity,
        platform: None,
    }
}

/// The candidates (service → the manifest its inputs tag names) that the registry shows a
/// release made; the others are left out, each with a warning.
pub async fn keep_trusted(
    pusher: &Pusher<'_>,
    targets: &[ImageTarget],
    inputs: &HashMap<String, Inputs>,
    candidates: HashMap<String, RawManifest>,
    reporter: &Reporter,
) -> HashMap<String, RawManifest> {
    let checks = candidates.into_iter().filter_map(|(service, candidate)| {
        let target = targets.iter().find(|t| t.service == service)?;
        let digest = inputs.get(&service).and_then(Inputs::digest)?;
        Some(async move {
            let verdict = pusher
                .trust(target, &candidate, &expected(target, &digest.hex))
                .await;
            let tag = format!(
                "{}:{}",
                target.repository_ref().unwrap_or_default(),
                digest.tag()
            );
            (target, candidate, tag, verdict)
        })
    });
    let mut kept = HashMap::new();
    for (target, candidate, tag, verdict) in futures_util::future::join_all(checks).await {
        let service = &target.service;
        match verdict {
            Ok(Verdict::Trusted { revision, tag }) => {
                tracing::info!(%service, "reusing the image of commit {revision} (its tag {tag})");
                kept.insert(service.clone(), candidate);
            }
            Ok(Verdict::Untrusted(why)) => reporter.warn(&format!(
                "`{service}`: the image under {tag} is not reused: {why}; building it"
            )),
            Err(e) => reporter.warn(&format!(
                "`{service}`: cannot check the image under {tag} ({e}); building it"
            )),
        }
    }
    kept
}
