//! The platforms a service's image is built for, chosen as docker compose chooses them
//! (`applyPlatforms`, then `BuildOptions.Apply`, of `docker compose build`):
//!
//! - `build.platforms` when set;
//! - else the service's `platform:` (the loader already refused a `platform:` missing from
//!   `build.platforms`);
//! - `DOCKER_DEFAULT_PLATFORM` (from the environment or the project's env files) stands in
//!   for a missing `platform:`, and must be one of the platforms built, whatever named them;
//! - else none: the daemon builds its own platform.
//!
//! More than one platform makes a multi-platform image: each platform is its own build on the
//! daemon ([`crate::service`]), and the release writes an index of them.

pub use wharf_compose::platform::{parse_list, Platform, PlatformParseError};
use wharf_compose::{Build, Service};

/// What one build makes its image for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Named by the project (or the run's `--platform`): passed to the daemon.
    Declared(Platform),
    /// None named: the daemon builds its own platform
    /// ([`crate::service::Prepared::use_daemon_platform`] records it).
    Daemon(Native),
}

/// What is known of the daemon's own platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Native {
    NotAsked,
    /// As the daemon says.
    Known(Platform),
    /// Why the daemon could not tell.
    Unknown(String),
}

impl Target {
    /// The platform to ask the daemon for: only a declared one.
    pub fn declared(&self) -> Option<&Platform> {
        match self {
            Target::Declared(p) => Some(p),
            Target::Daemon(_) => None,
        }
    }

    /// The platform the image is made for, when known.
    pub fn known(&self) -> Option<&Platform> {
        match self {
            Target::Declared(p) | Target::Daemon(Native::Known(p)) => Some(p),
            Target::Daemon(_) => None,
        }
    }
}

/// Why no platform could be chosen; each names the field to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("does not include {default}, the platform DOCKER_DEFAULT_PLATFORM asks for (build.platforms: {listed}); add it, or unset DOCKER_DEFAULT_PLATFORM")]
    DefaultNotListed { default: String, listed: String },
    #[error("is {platform}, but DOCKER_DEFAULT_PLATFORM asks for {default} (docker compose refuses the pair too); make them agree, or unset DOCKER_DEFAULT_PLATFORM")]
    DefaultConflicts { platform: String, default: String },
    #[error("{0}")]
    Invalid(PlatformParseError, &'static str),
}

impl PlatformError {
    /// The key path of the field the error is about, below `services.NAME`.
    pub fn field(&self) -> &'static str {
        match self {
            PlatformError::DefaultConflicts { .. } => "platform",
            PlatformError::DefaultNotListed { .. } => "build.platforms",
            PlatformError::Invalid(_, field) => field,
        }
    }
}

fn parse(s: &str, field: &'static str) -> Result<Platform, PlatformError> {
    Platform::parse(s).map_err(|e| PlatformError::Invalid(e, field))
}

fn join(list: &[Platform]) -> String {
    list.iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses the platforms `service` (with its `build`) is built for, normalized and without
/// repeats; empty: the daemon's own. `default` is `DOCKER_DEFAULT_PLATFORM`.
pub fn choose(
    service: &Service,
    build: &Build,
    default: Option<&str>,
) -> Result<Vec<Platform>, PlatformError> {
    let mut listed: Vec<Platform> = Vec::new();
    for p in &build.platforms {
        let p = parse(p, "build.platforms")?;
        if !listed.contains(&p) {
            listed.push(p);
        }
    }
    let own = match &service.platform {
        Some(p) => Some(parse(p, "platform")?),
        None => None,
    };
    let default = match default {
        Some(d) => Some(parse(d, "platform")?),
        None => None,
    };
    let mut platform = own.clone();
    if let (Some(d), None) = (&default, &platform) {
        if !listed.is_empty() && !listed.contains(d) {
            return Err(PlatformError::DefaultNotListed {
                default: d.to_string(),
                listed: join(&listed),
            });
        }
        platform = Some(d.clone());
    }
    let platforms = match (&platform, listed.is_empty()) {
        (Some(p), true) => vec![p.clone()],
        _ => listed.clone(),
    };
    if let Some(d) = &default {
        if !platforms.is_empty() && !platforms.contains(d) {
            return Err(match (&own, listed.is_empty()) {
                (Some(p), true) => PlatformError::DefaultConflicts {
                    platform: p.to_string(),
                    default: d.to_string(),
                },
                _ => PlatformError::DefaultNotListed {
                    default: d.to_string(),
                    listed: join(&listed),
                },
            });
        }
    }
    Ok(platforms)
}

/// The platforms of `chosen` a run limited to `only` (`--platform`) builds: those among
/// `only`. A service that declares none is not built by such a run.
pub fn narrow(chosen: &[Platform], only: &[Platform]) -> Vec<Platform> {
    chosen
        .iter()
        .filter(|p| only.contains(p))
        .cloned()
        .collect()
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

    fn declared(p: &str) -> Result<Vec<Platform>, PlatformError> {
        Ok(vec![Platform::parse(p).unwrap()])
    }

    #[test]
    fn the_compose_order() {
        // Nothing named: the daemon's own.
        assert_eq!(choose(&service(None), &build(&[]), None), Ok(vec![]));
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
        // Many platforms: each is built; spellings are normalized, repeats dropped.
        assert_eq!(
            choose(
                &service(None),
                &build(&["linux/amd64", "linux/arm64/v8", "linux/x86_64"]),
                None,
            )
            .unwrap(),
            [
                Platform::parse("linux/amd64").unwrap(),
                Platform::parse("linux/arm64").unwrap()
            ]
        );
        let e = choose(&service(None), &build(&["linux"]), None).unwrap_err();
        assert_eq!(e.field(), "build.platforms");
        // `platform:` picks one of build.platforms, but compose then still builds them all.
        assert_eq!(
            choose(
                &service(Some("linux/amd64")),
                &build(&["linux/amd64", "linux/arm64"]),
                None,
            )
            .unwrap()
            .len(),
            2
        );
        let both = choose(
            &service(None),
            &build(&["linux/amd64", "linux/arm64"]),
            None,
        )
        .unwrap();
        assert_eq!(
            narrow(&both, &[Platform::parse("linux/arm64").unwrap()]),
            [Platform::parse("linux/arm64").unwrap()]
        );
        assert!(narrow(&[], &both).is_empty());
    }
}
