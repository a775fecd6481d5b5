//! Before anything is built: every ECR and ECR Public repository exists (or is created when
//! asked), and no moving tag would hit a tag the repository keeps immutable — by its mode
//! alone or by its exclusion filters — so that a release never fails on it in phase 2.
//! Registries other than ECR create repositories on first push and have no immutable tags.

use super::logins::Aws;
use super::ReleaseError;
use crate::events::{EventSink, ServiceEvent};
use crate::registry::{parse_ecr_host, Registry};
use crate::repositories::{CreateSettings, Ecr, EcrPublic, RepositoryInfo};
use crate::target::ImageTarget;
use std::collections::HashMap;

/// A moving tag the repository's rules keep immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableMovingTag {
    pub service: String,
    pub repository: String,
    pub tag: String,
    /// The repository's rule, as ECR names it.
    pub rule: String,
}

/// Checks (and creates, with `create`) every target repository.
pub async fn check_repositories(
    targets: &[ImageTarget],
    create: Option<&CreateSettings>,
    aws: &mut Aws,
    events: &EventSink,
) -> Result<(), ReleaseError> {
    let mut missing = Vec::new();
    let mut immutable = Vec::new();
    // Several services may share a repository: ask about it once, check each one's tags.
    let mut known: HashMap<String, Option<RepositoryInfo>> = HashMap::new();
    for t in targets {
        let Some(host) = &t.host else { continue };
        let full = format!("{host}/{}", t.repository);
        if let Some(info) = known.get(&full) {
            immutable.extend(immutable_moving_tags(t, &full, info.as_ref()));
            continue;
        }
        let creating = || {
            events.service(ServiceEvent::CreatingRepository {
                service: t.service.clone(),
                repository: full.clone(),
            })
        };
        let info: Option<RepositoryInfo> = match &t.registry {
            Registry::Ecr { .. } | Registry::EcrOfCaller => {
                let Some((account, region)) = parse_ecr_host(host) else {
                    continue;
                };
                let ecr = Ecr::new(aws.config().await, &account, &region, host);
                match ecr
                    .describe(&t.repository)
                    .await
                    .map_err(ReleaseError::Config)?
                {
                    Some(i) => Some(i),
                    None => match create {
                        Some(settings) => {
                            creating();
                            Some(
                                ecr.create(&t.repository, settings)
                                    .await
                                    .map_err(ReleaseError::Config)?,
                            )
                        }
                        None => {
                            missing.push(format!("{full} (service `{}`)", t.service));
                            None
                        }
                    },
                }
            }
            Registry::EcrPublic { alias } => {
                let name = t
                    .repository
                    .strip_prefix(&format!("{alias}/"))
                    .unwrap_or(&t.repository);
                let public = EcrPublic::new(aws.config().await);
                match public.describe(name).await.map_err(ReleaseError::Config)? {
                    Some(i) => Some(i),
                    None if create.is_some() => {
                        creating();
                        Some(public.create(name).await.map_err(ReleaseError::Config)?)
                    }
                    None => {
                        missing.push(format!("{full} (service `{}`)", t.service));
                        None
                    }
                }
            }
            Registry::Other { .. } => None,
        };
        immutable.extend(immutable_moving_tags(t, &full, info.as_ref()));
        known.insert(full, info);
    }
    if missing.is_empty() && immutable.is_empty() {
        Ok(())
    } else {
        Err(ReleaseError::Repositories { missing, immutable })
    }
}

fn immutable_moving_tags(
    t: &ImageTarget,
    repository: &str,
    info: Option<&RepositoryInfo>,
) -> Vec<ImmutableMovingTag> {
    let Some(info) = info else { return Vec::new() };
    t.moving_tags
        .iter()
        .filter_map(|tag| {
            Some(ImmutableMovingTag {
                rule: info.mutability.immutable_rule(tag)?,
                service: t.service.clone(),
                repository: repository.to_string(),
                tag: tag.clone(),
            })
        })
        .collect()
}
