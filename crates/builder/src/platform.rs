//! The platform a service's image is built for, chosen as docker compose chooses it
//! (`applyPlatforms`, then `BuildOptions.Apply`, of `docker compose build`):
//!
//! - `build.platforms` when set;
//! - else the service's `platform:` (the loader already refused a `platform:` missing from
//!   `build.platforms`);
//! - `DOCKER_DEFAULT_PLATFORM` (from the environment or the project's env files) stands in
//!   for a missing `platform:`, and must be one of the platforms built, whatever named them;
//! - else none: the daemon builds its own platform.
//!
//! The daemon builds one platform per image, so more than one is refused here.

use wharf_compose::{Build, Service};

/// What a build makes its image for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Named by the project: passed to the daemon.
    Declared(String),
    /// None named: the daemon builds its own platform
    /// ([`crate::service::Prepared::use_daemon_platform`] records it).
    Daemon(Native),
}

/// What is known of the daemon's own platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Native {
    NotAsked,
    /// `os/arch`, as the daemon says.
    Known(String),
    /// Why the daemon could not tell.
    Unknown(String),
}

impl Target {
    /// The platform to ask the daemon for: only a declared one.
    pub fn declared(&self) -> Option<&str> {
        match self {
            Target::Declared(p) => Some(p),
            Target::Daemon(_) => None,
        }
    }
}

/// Why no single platform could be chosen; each names the field to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("does not include {default}, the platform DOCKER_DEFAULT_PLATFORM asks for (build.platforms: {listed}); add it, or unset DOCKER_DEFAULT_PLATFORM")]
    DefaultNotListed { default: String, listed: String },
    #[error("is {platform}, but DOCKER_DEFAULT_PLATFORM asks for {default} (docker compose refuses the pair too); make them agree, or unset DOCKER_DEFAULT_PLATFORM")]
    DefaultConflicts { platform: String, default: String },
    #[error("the Docker daemon builds one platform per image, not {count} ({listed}); a multi-platform image needs a buildx builder")]
    Many { count: usize, listed: String },
}

impl PlatformError {
    /// The key path of the field the error is about, below `services.NAME`.
    pub fn field(&self) -> &'static str {
        match self {
            PlatformError::DefaultConflicts { .. } => "platform",
            PlatformError::DefaultNotListed { .. } | PlatformError::Many { .. } => {
                "build.platforms"
            }
        }
    }
}

/// Chooses the platform `service` (with its `build`) is built for; `default` is
/// `DOCKER_DEFAULT_PLATFORM`.
pub fn choose(
    service: &Service,
    build: &Build,
    default: Option<&str>,
) -> Result<Target, PlatformError> {
    let listed = &build.platforms;
    let mut platform = service.platform.clone();
    if let (Some(d), None) = (default, &platform) {
        if !listed.is_empty() && !listed.iter().any(|p| p == d) {
            return Err(PlatformError::DefaultNotListed {
                default: d.to_string(),
                listed: listed.join(", "),
            });
        }
        platform = Some(d.to_string());
    }
    let platforms = match (&platform, listed.is_empty()) {
        (Some(p), true) => vec![p.clone()],
        _ => listed.clone(),
    };
    if let Some(d) = default {
        if !platforms.is_empty() && !platforms.iter().any(|p| p == d) {
            return Err(match (&service.platform, listed.is_empty()) {
                (Some(p), true) => PlatformError::DefaultConflicts {
                    platform: p.clone(),
                    default: d.to_string(),
                },
                _ => PlatformError::DefaultNotListed {
                    default: d.to_string(),
                    listed: listed.join(", "),
                },
            });
        }
    }
    match platforms.as_slice() {
        [] => Ok(Target::Daemon(Native::NotAsked)),
        [p] => Ok(Target::Declared(p.clone())),
        many => Err(PlatformError::Many {
            count: many.len(),
            listed: many.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(platform: Option<&str>) -> Service {
        Service {
            name: "app".into(),
            image: None,
            platform: platform.map(String::from),
            build: None,
            profiles: vec![],
            x_wharf: None,
            depends_on: vec![],
            extensions: Default::default(),
            compose: serde_json::Value::Null,
        }
    }

    fn build(platforms: &[&str]) -> Build {
        Build {
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    fn declared(p: &str) -> Result<Target, PlatformError> {
        Ok(Target::Declared(p.into()))
    }

    #[test]
    fn the_compose_order() {
        // Nothing named: the daemon's own.
        assert_eq!(
            choose(&service(None), &build(&[]), None),
            Ok(Target::Daemon(Native::NotAsked))
        );
        // `platform:` when build.platforms is absent; build.platforms otherwise.
        let s386 = service(Some("linux/386"));
        assert_eq!(choose(&s386, &build(&[]), None), declared("linux/386"));
        assert_eq!(
            choose(&service(None), &build(&["linux/arm64"]), None),
            declared("linux/arm64")
        );
        // DOCKER_DEFAULT_PLATFORM stands in for a missing `platform:`.
        assert_eq!(
            choose(&service(None), &build(&[]), Some("linux/arm64")),
            declared("linux/arm64")
        );
        assert_eq!(
            choose(
                &service(None),
                &build(&["linux/arm64"]),
                Some("linux/arm64")
            ),
            declared("linux/arm64")
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let e = choose(
            &service(None),
            &build(&["linux/amd64"]),
            Some("linux/arm64"),
        )
        .unwrap_err();
        assert_eq!(e.field(), "build.platforms");
        assert!(e.to_string().contains("DOCKER_DEFAULT_PLATFORM"), "{e}");
        // compose refuses `platform:` and DOCKER_DEFAULT_PLATFORM disagreeing.
        let e = choose(
            &service(Some("linux/386")),
            &build(&[]),
            Some("linux/arm64"),
        )
        .unwrap_err();
        assert_eq!(e.field(), "platform");
        let e = choose(
            &service(None),
            &build(&["linux/amd64", "linux/arm64"]),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e,
            PlatformError::Many {
                count: 2,
                listed: "linux/amd64, linux/arm64".into()
            }
        );
        // `platform:` picks one of build.platforms, but compose then still builds them all.
        let e = choose(
            &service(Some("linux/amd64")),
            &build(&["linux/amd64", "linux/arm64"]),
            None,
        )
        .unwrap_err();
        assert_eq!(e.field(), "build.platforms");
    }
}
