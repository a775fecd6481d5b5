//! `wharf promote`: make the release of one commit the one the moving tags name, without
//! building — the fan-in after the shards of a CI matrix, a rollback (an older commit), a
//! promotion to another registry.
//!
//! 1. [`find`]: every selected service's identity tags of the commit are in the registry and
//!    name one image, every platform image of an index is there, and the image passes the
//!    trust check ([`crate::trust::check_promoted`]). Anything else: [`PromoteError::Incomplete`]
//!    lists every service at fault, and nothing moves.
//! 2. With a destination registry ([`copy`]): the images go there through the registry API,
//!    each blob mounted (same registry) or streamed (another one), each manifest byte for
//!    byte, so the digests stay the same; they are read back and compared.
//! 3. Phase 2 of the release engine ([`Release::move_to`]): the moving tags, all or nothing,
//!    restored on failure or Ctrl-C.

mod copy;
mod find;

pub use find::{find, Fault, Found, Unwritten};

use crate::events::{EventSink, ServiceEvent};
use crate::release::{self, Aws, Interrupt, Logins, ManifestImage, Release, ReleaseError, Tagger};
use crate::target::ImageTarget;
use crate::Error;
use std::collections::BTreeMap;

/// Why a promotion stopped. Nothing moved unless a [`ReleaseError::MovingFailed`] says so.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// Services whose release of the commit is not (wholly) in the registry.
    #[error("the release of commit {commit} is not whole in the registry; no moving tag was moved.\n  {}\n  release the missing services first (e.g. run the failed shard again), or promote only the others by naming them", list(faults))]
    Incomplete {
        commit: String,
        faults: Vec<(String, Fault)>,
    },

    /// The registry holding the release cannot be read at all (no answer, refused
    /// credentials): nothing was looked at, nothing moved.
    #[error("the registry cannot be read; no moving tag was moved.\n  {}\n  check the registry address (--registry, the image names) and its credentials (docker login, or the AWS credentials for ECR)", list(.0))]
    Unusable(Vec<(String, Fault)>),

    /// Writing a multi-platform service's index from its platforms' images failed; no moving
    /// tag was moved.
    #[error("writing the index of the platforms' images failed; no moving tag was moved.\n  {}", .0.iter().map(|(s, e)| format!("`{s}`: {e}")).collect::<Vec<_>>().join("\n  "))]
    Index(Vec<(String, Error)>),

    /// Copying to the destination registry failed; no moving tag moved there.
    #[error("copying the release to {registry} failed; no moving tag was moved there.\n  {}", failed.iter().map(|(s, e)| format!("`{s}`: {e}")).collect::<Vec<_>>().join("\n  "))]
    Copy {
        registry: String,
        failed: Vec<(String, Error)>,
    },

    /// The release engine's own errors: logins, repositories, phase 2.
    #[error(transparent)]
    Release(#[from] ReleaseError),
}

fn list(faults: &[(String, Fault)]) -> String {
    faults
        .iter()
        .map(|(s, f)| format!("`{s}`: {f}"))
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// What a promotion is to do.
pub struct Promotion {
    /// The commit whose release is promoted (40 hex).
    pub commit: String,
    /// Where the release is, its identity and moving tags rendered for `commit`.
    pub sources: Vec<ImageTarget>,
    /// Where it goes, when that is another registry (`--to`): the same services, tags and
    /// repositories there.
    pub destination: Option<Vec<ImageTarget>>,
}

/// Runs a promotion (see the module's documentation); returns the manifest of the promoted
/// release in the registry its moving tags moved in. `prepared`: told every set of logins
/// as it is made (the binary masks them in CI logs).
pub async fn promote(
    promotion: Promotion,
    docker: bollard::Docker,
    options: release::Options,
    events: EventSink,
    interrupt: Interrupt,
    prepared: &dyn Fn(&Logins),
) -> Result<Vec<ManifestImage>, PromoteError> {
    let Promotion {
        commit,
        mut sources,
        destination,
    } = promotion;
    let mut aws = Aws::new(options.timeouts);
    let source_logins = release::login_all(&mut sources, &mut aws)
        .await
        .map_err(ReleaseError::Config)?;
    prepared(&source_logins);
    let api = crate::api::RegistryApi::new(options.timeouts);
    let reader = Tagger {
        docker: &docker,
        api: &api,
        logins: &source_logins,
        events: &events,
    };
    let found = find(&reader, &sources, &commit).await.map_err(|faults| {
        let unusable = faults
            .iter()
            .all(|(_, f)| matches!(f, Fault::Registry(e) if e.is_unusable_registry()));
        if unusable {
            PromoteError::Unusable(faults)
        } else {
            PromoteError::Incomplete {
                commit: commit.clone(),
                faults,
            }
        }
    })?;

    write_indexes(&reader, &sources, &found)
        .await
        .map_err(PromoteError::Index)?;

    let copying = destination.is_some();
    let mut release = Release::prepare(
        destination.unwrap_or_else(|| sources.clone()),
        docker,
        options,
        events.clone(),
        interrupt.clone(),
    )
    .await?;
    prepared(release.logins());
    let digests: BTreeMap<String, String> = if copying {
        copy::copy_all(
            &release.tagger(),
            &interrupt,
            &sources,
            &source_logins,
            release.targets(),
            &found,
        )
        .await
        .map_err(|failed| PromoteError::Copy {
            registry: release
                .targets()
                .first()
                .and_then(|t| t.host.clone())
                .unwrap_or_default(),
            failed,
        })?
    } else {
        found
            .iter()
            .map(|(service, f)| (service.clone(), f.manifest.digest.clone()))
            .collect()
    };
    Ok(release.move_to(digests).await?)
}

/// Step 1's end for the multi-platform services whose shards pushed only platform identity
/// tags: each index is written under its identity tags, so that the release is whole in the
/// registry before anything moves (and a later rollback finds it like any other).
async fn write_indexes(
    tagger: &Tagger<'_>,
    sources: &[ImageTarget],
    found: &BTreeMap<String, Found>,
) -> Result<(), Vec<(String, Error)>> {
    let mut failed = Vec::new();
    for t in sources {
        let Some(Unwritten { children, tags }) =
            found.get(&t.service).and_then(|f| f.unwritten.as_ref())
        else {
            continue;
        };
        for tag in tags {
            tagger.events.service(ServiceEvent::Pushing {
                service: t.service.clone(),
                tag: tag.clone(),
            });
        }
        let written = match tagger.repository(t) {
            Ok((repository, login)) => {
                tagger
                    .retried(&t.service, &format!("PUT {repository} index"), || {
                        crate::index::write(tagger.api, &repository, children, tags, login)
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(index) => {
                for tag in tags {
                    tagger.events.service(ServiceEvent::Pushed {
                        service: t.service.clone(),
                        tag: tag.clone(),
                        digest: index.digest.clone(),
                    });
                }
            }
            Err(e) => failed.push((t.service.clone(), e)),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}
