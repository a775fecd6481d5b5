//! The release's logins: one per registry host, made before anything is built (so a missing
//! permission costs seconds, not a build), held in memory only, and renewed when a token is
//! about to run out (ECR tokens last hours; a long build may outlive one).

use super::tagger::Logins;
use crate::login::{self, Login};
use crate::registry::Registry;
use crate::target::ImageTarget;
use crate::timeouts::Timeouts;
use crate::Error;
use aws_config::SdkConfig;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::SystemTime;

/// The AWS settings, loaded once and only when a registry needs them.
pub struct Aws {
    sdk: Option<SdkConfig>,
    timeouts: Timeouts,
}

impl Aws {
    pub fn new(timeouts: Timeouts) -> Aws {
        Aws {
            sdk: None,
            timeouts,
        }
    }

    /// The settings, if a registry needed them (so that other AWS calls reuse them).
    pub fn loaded(self) -> Option<SdkConfig> {
        self.sdk
    }

    pub async fn config(&mut self) -> &SdkConfig {
        if self.sdk.is_none() {
            self.sdk = Some(login::aws_config(&self.timeouts).await);
        }
        self.sdk.as_ref().expect("just set")
    }
}

/// Resolves `--registry ecr` hosts and logs into every registry the targets use.
pub async fn login_all(targets: &mut [ImageTarget], aws: &mut Aws) -> Result<Logins, Error> {
    let mut logins: Logins = HashMap::new();
    // `--registry ecr` resolves once to the caller's own registry host.
    let mut caller_host: Option<String> = None;
    for target in targets.iter_mut() {
        let registry = target.registry.clone();
        match &registry {
            Registry::EcrOfCaller => {
                let host = match &caller_host {
                    Some(h) => h.clone(),
                    None => {
                        let sdk = aws.config().await;
                        let account = login::caller_account(sdk).await?;
                        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
                            Error::InvalidRegistry {
                                given: "ecr".into(),
                                why:
                                    "it needs an AWS region: set AWS_REGION (or a profile's region)"
                                        .into(),
                            }
                        })?;
                        let l = login::ecr(sdk, Some(&region)).await?;
                        let host = if l.host.starts_with(&account) {
                            l.host.clone()
                        } else {
                            format!("{account}.dkr.ecr.{region}.amazonaws.com")
                        };
                        logins.insert(
                            host.clone(),
                            Login {
                                host: host.clone(),
                                ..l
                            },
                        );
                        caller_host = Some(host.clone());
                        host
                    }
                };
                target.host = Some(host);
            }
            Registry::Ecr { region, host, .. } => {
                if let Entry::Vacant(slot) = logins.entry(host.clone()) {
                    let l = login::ecr(aws.config().await, Some(region)).await?;
                    // The token opens every registry of the region the caller may use.
                    slot.insert(Login {
                        host: host.clone(),
                        ..l
                    });
                }
            }
            Registry::EcrPublic { .. } => {
                let host = crate::registry::ECR_PUBLIC_HOST.to_string();
                if let Entry::Vacant(slot) = logins.entry(host) {
                    slot.insert(login::ecr_public(aws.config().await).await?);
                }
            }
            Registry::Other { host, .. } => {
                if !logins.contains_key(host) {
                    if let Some(l) = login::docker_config(host)? {
                        logins.insert(host.clone(), l);
                    }
                }
            }
        }
    }
    Ok(logins)
}

/// The hosts whose token runs out soon (see [`login::needs_refresh`]: never one that claims to
/// have expired already, so renewing cannot loop).
pub fn stale(logins: &Logins, now: SystemTime) -> Vec<String> {
    logins
        .values()
        .filter(|l| login::needs_refresh(l.expires_at, now))
        .map(|l| l.host.clone())
        .collect()
}

/// Logs in again where a token is about to run out.
pub async fn refresh(
    targets: &[ImageTarget],
    logins: &mut Logins,
    aws: &mut Aws,
) -> Result<(), Error> {
    let stale = stale(logins, SystemTime::now());
    if stale.is_empty() {
        return Ok(());
    }
    tracing::info!("refreshing registry tokens for {}", stale.join(", "));
    let mut affected: Vec<ImageTarget> = targets
        .iter()
        .filter(|t| t.host.as_ref().is_some_and(|h| stale.contains(h)))
        .cloned()
        .collect();
    let fresh = login_all(&mut affected, aws).await?;
    logins.extend(fresh);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::time::Duration;

    fn login(host: &str, expires_in: Option<i64>) -> Login {
        let now = SystemTime::now();
        Login {
            host: host.into(),
            username: "AWS".into(),
            password: SecretString::from("p".to_string()),
            expires_at: expires_in.map(|s| {
                if s >= 0 {
                    now + Duration::from_secs(s as u64)
                } else {
                    now - Duration::from_secs((-s) as u64)
                }
            }),
        }
    }

    #[test]
    fn only_tokens_about_to_run_out_are_renewed() {
        let mut logins = Logins::new();
        for (h, e) in [
            ("soon", Some(60)),
            ("later", Some(6 * 3600)),
            ("past", Some(-60)),
            ("never", None),
        ] {
            logins.insert(h.into(), login(h, e));
        }
        assert_eq!(stale(&logins, SystemTime::now()), vec!["soon".to_string()]);
    }
}
