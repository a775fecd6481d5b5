//! Phase 2, all or nothing: the moving tags go onto the images phase 1 landed, and when one
//! cannot be moved (after retries) or the user interrupts, every tag this run moved is put
//! back where it was — so the registry ends with the whole new release or the whole old one.
//!
//! Before moving anything, the manifest each moving tag names is read (or found missing):
//! that is what a restore puts back. A tag that did not exist before is removed where the
//! registry can remove a single tag (ECR and ECR Public: BatchDeleteImage by tag); the
//! distribution registry cannot (deleting its manifest would delete the identity tags too),
//! and such a tag is reported as left on the new image.

use super::logins::Aws;
use super::tagger::Tagger;
use super::{Interrupt, ReleaseError};
use crate::api::RawManifest;
use crate::events::{Phase, ServiceEvent};
use crate::registry::{parse_ecr_host, Registry};
use crate::repositories::{Ecr, EcrPublic};
use crate::target::ImageTarget;
use crate::Error;
use futures_util::stream::{self, StreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

/// One moving tag to move.
struct Move<'t> {
    target: &'t ImageTarget,
    repository: String,
    tag: String,
    /// What the tag named before this run (`None`: it did not exist).
    before: Option<RawManifest>,
    /// What it is to name.
    after: RawManifest,
}

impl Move<'_> {
    fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

enum MoveOutcome {
    /// The registry accepted the new manifest under the tag.
    Landed,
    /// Ctrl-C stopped the request under way: the tag may have moved, so it is put back too
    /// (putting back a tag that did not move changes nothing).
    Unknown,
    /// The tag already named the new image: nothing to do, nothing to restore.
    AlreadyThere,
    /// Not tried: the phase stopped first.
    NotTried,
    Failed(Error),
}

/// What a failed or interrupted phase 2 left.
#[derive(Debug, Default)]
pub struct Restoration {
    /// `repository:tag` put back (or removed, when it did not exist before).
    pub restored: Vec<String>,
    /// `repository:tag` still on the new image, and why.
    pub left: Vec<(String, String)>,
}

/// Moves every moving tag of `targets` onto the digest phase 1 landed for its service.
pub(super) async fn move_all(
    tagger: &Tagger<'_>,
    aws: &mut Aws,
    targets: &[ImageTarget],
    digests: &BTreeMap<String, String>,
    landed: &HashMap<String, RawManifest>,
    interrupt: &Interrupt,
    parallel: usize,
) -> Result<(), ReleaseError> {
    let moves = match prepare(tagger, targets, digests, landed, parallel).await {
        Ok(m) => m,
        Err(failed) => {
            return Err(ReleaseError::MovingFailed {
                failed,
                restoration: Restoration::default(),
                interrupted: false,
            })
        }
    };
    if moves.is_empty() {
        return Ok(());
    }
    let stop = AtomicBool::new(false);
    let outcomes: Vec<(usize, MoveOutcome)> = {
        let work = stream::iter(moves.iter().enumerate().map(|(i, m)| {
            let stop = &stop;
            async move {
                if stop.load(Ordering::SeqCst) || interrupt.requested() {
                    return (i, MoveOutcome::NotTried);
                }
                if m.before.as_ref().map(|b| &b.digest) == Some(&m.after.digest) {
                    return (i, MoveOutcome::AlreadyThere);
                }
                let copy = tagger.copy(
                    m.target,
                    &m.repository,
                    &m.tag,
                    &m.after,
                    login(tagger, m),
                    true,
                );
                let r = tokio::select! {
                    r = copy => r,
                    () = interrupt.wait() => return (i, MoveOutcome::Unknown),
                };
                match r {
                    Ok(()) => (i, MoveOutcome::Landed),
                    Err(e) => {
                        // A permanent failure (retries are behind it): start no other move.
                        stop.store(true, Ordering::SeqCst);
                        (i, MoveOutcome::Failed(e))
                    }
                }
            }
        }))
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<_>>();
        work.await
    };
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    for (i, outcome) in outcomes {
        match outcome {
            MoveOutcome::Landed => moved.push((&moves[i], true)),
            MoveOutcome::Unknown => moved.push((&moves[i], false)),
            MoveOutcome::Failed(e) => failed.push((moves[i].target.service.clone(), e)),
            MoveOutcome::AlreadyThere | MoveOutcome::NotTried => {}
        }
    }
    let interrupted = interrupt.requested();
    if failed.is_empty() && !interrupted {
        return Ok(());
    }
    interrupt.enter(Phase::Restoring);
    tagger.events.phase(Phase::Restoring);
    interrupt.set_left(moved.iter().map(|(m, _)| m.reference()).collect());
    let restoration = restore(tagger, aws, &moved, interrupt).await;
    Err(ReleaseError::MovingFailed {
        failed,
        restoration,
        interrupted,
    })
}

fn login<'a>(tagger: &Tagger<'a>, m: &Move<'_>) -> Option<&'a crate::login::Login> {
    m.target.host.as_deref().and_then(|h| tagger.logins.get(h))
}

/// Reads what every moving tag names now, and the manifest it is to name. Any failure here
/// stops phase 2 before a tag has moved.
async fn prepare<'t>(
    tagger: &Tagger<'_>,
    targets: &'t [ImageTarget],
    digests: &BTreeMap<String, String>,
    landed: &HashMap<String, RawManifest>,
    parallel: usize,
) -> Result<Vec<Move<'t>>, Vec<(String, Error)>> {
    let wanted = targets
        .iter()
        .filter(|t| !t.moving_tags.is_empty())
        .filter_map(|t| Some((t, digests.get(&t.service)?.clone())));
    let read = stream::iter(wanted.map(|(t, digest)| async move {
        let read = async {
            let (repository, login) = tagger.repository(t)?;
            let after = match landed.get(&digest) {
                Some(m) => m.clone(),
                None => tagger.manifest_at(t, &repository, &digest, login).await?,
            };
            let mut moves = Vec::new();
            for tag in &t.moving_tags {
                let before = tagger.find(t, tag).await?;
                moves.push(Move {
                    target: t,
                    repository: repository.clone(),
                    tag: tag.clone(),
                    before,
                    after: after.clone(),
                });
            }
            Ok::<_, Error>(moves)
        };
        (t.service.clone(), read.await)
    }))
    .buffer_unordered(parallel.max(1))
    .collect::<Vec<_>>()
    .await;
    let mut moves = Vec::new();
    let mut failed = Vec::new();
    for (service, r) in read {
        match r {
            Ok(m) => moves.extend(m),
            Err(e) => failed.push((service, e)),
        }
    }
    if failed.is_empty() {
        Ok(moves)
    } else {
        Err(failed)
    }
}

/// Puts every moved tag back, one at a time (a second Ctrl-C may end the process any
/// moment: what is left is always in `interrupt`). `moved`: each tag with whether it surely
/// moved (else Ctrl-C stopped its request, and the registry says whether it did).
async fn restore(
    tagger: &Tagger<'_>,
    aws: &mut Aws,
    moved: &[(&Move<'_>, bool)],
    interrupt: &Interrupt,
) -> Restoration {
    let mut out = Restoration::default();
    let mut left: Vec<String> = moved.iter().map(|(m, _)| m.reference()).collect();
    for (m, surely) in moved {
        let service = m.target.service.clone();
        if !surely {
            match tagger.find(m.target, &m.tag).await {
                Ok(now) if now.as_ref().map(|n| &n.digest) != Some(&m.after.digest) => {
                    // It never moved: nothing to put back.
                    left.retain(|r| *r != m.reference());
                    interrupt.set_left(left.clone());
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    let reason = format!("cannot tell whether it moved: {e}");
                    tagger.events.service(ServiceEvent::NotRestored {
                        service,
                        tag: m.tag.clone(),
                        reason: reason.clone(),
                    });
                    out.left.push((m.reference(), reason));
                    continue;
                }
            }
        }
        let result = match &m.before {
            Some(before) => tagger
                .copy(
                    m.target,
                    &m.repository,
                    &m.tag,
                    before,
                    login(tagger, m),
                    false,
                )
                .await
                .map(|()| Some(before.digest.clone()))
                .map_err(|e| e.to_string()),
            None => remove_tag(aws, m.target, &m.tag).await.map(|()| None),
        };
        match result {
            Ok(digest) => {
                tagger.events.service(ServiceEvent::Restored {
                    service,
                    tag: m.tag.clone(),
                    digest,
                });
                out.restored.push(m.reference());
                left.retain(|r| *r != m.reference());
                interrupt.set_left(left.clone());
            }
            Err(reason) => {
                tagger.events.service(ServiceEvent::NotRestored {
                    service,
                    tag: m.tag.clone(),
                    reason: reason.clone(),
                });
                out.left.push((m.reference(), reason));
            }
        }
    }
    out
}

/// Removes a moving tag that did not exist before this run, where the registry can remove a
/// single tag.
async fn remove_tag(aws: &mut Aws, target: &ImageTarget, tag: &str) -> Result<(), String> {
    let host = target.host.as_deref().unwrap_or_default();
    let removed = match &target.registry {
        Registry::Ecr { .. } | Registry::EcrOfCaller => {
            let Some((account, region)) = parse_ecr_host(host) else {
                return Err(format!("{host} is not an ECR host"));
            };
            Ecr::new(aws.config().await, &account, &region, host)
                .untag(&target.repository, tag)
                .await
        }
        Registry::EcrPublic { alias } => {
            let name = target
                .repository
                .strip_prefix(&format!("{alias}/"))
                .unwrap_or(&target.repository);
            EcrPublic::new(aws.config().await).untag(name, tag).await
        }
        Registry::Other { .. } => {
            return Err(
                "it did not exist before, and this registry cannot remove a single tag (deleting its manifest would delete the identity tags too)"
                    .into(),
            )
        }
    };
    match removed {
        Ok(true) => Ok(()),
        Ok(false) => Err("it did not exist before, and the registry did not remove it".into()),
        Err(e) => Err(e.to_string()),
    }
}
