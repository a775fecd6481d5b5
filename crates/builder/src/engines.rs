//! Which Docker engine builds which platform: `x-wharf.engines` (platform → endpoint) and
//! `WHARF_ENGINES` (`linux/arm64=unix:///run/arm64.sock,linux/amd64=tcp://…`), the latter
//! winning per platform; a platform named in neither builds on the default engine (the one the
//! docker CLI would use). Endpoints are written as `DOCKER_HOST` is: `unix://`, `tcp://` (TLS
//! through `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`, as the docker CLI reads them) and
//! `ssh://[USER@]HOST[:PORT]` (the system's `ssh`, which runs `docker system dial-stdio` on the
//! remote, as the docker CLI does).

use crate::platform::Platform;
use bollard::Docker;
use std::collections::{BTreeMap, HashMap};

/// Platform → endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(BTreeMap<Platform, String>);

/// A routing map that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutesError {
    #[error("{source_name}: {message}")]
    Invalid {
        /// `x-wharf.engines` or `WHARF_ENGINES`.
        source_name: &'static str,
        message: String,
    },
    #[error("cannot reach the engine at {endpoint} (for {platform}): {message}")]
    Unreachable {
        platform: String,
        endpoint: String,
        message: String,
    },
}

fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.starts_with("ssh://") {
        return crate::ssh_engine::Destination::parse(endpoint)
            .map(|_| ())
            .map_err(|e| format!("{endpoint}: {e}"));
    }
    let rest = ["unix://", "tcp://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme));
    if rest.is_some_and(|r| !r.trim_end_matches('/').is_empty()) {
        return Ok(());
    }
    Err(format!(
        "{endpoint}: not a Docker endpoint; write unix:///path/to/docker.sock, tcp://HOST:PORT or ssh://HOST[:PORT] (USER@ before HOST for another user)"
    ))
}

impl Routes {
    /// The routing map of `compose` (`x-wharf.engines`), overridden per platform by `env`
    /// (`WHARF_ENGINES`).
    pub fn new(
        compose: Option<&BTreeMap<String, String>>,
        env: Option<&str>,
    ) -> Result<Routes, RoutesError> {
        let mut routes = BTreeMap::new();
        let mut add = |source_name: &'static str, platform: &str, endpoint: &str| {
            let invalid = |message: String| RoutesError::Invalid {
                source_name,
                message,
            };
            let p = Platform::parse(platform).map_err(|e| invalid(e.to_string()))?;
            let endpoint = endpoint.trim();
            check_endpoint(endpoint).map_err(invalid)?;
            routes.insert(p, endpoint.to_string());
            Ok::<(), RoutesError>(())
        };
        for (platform, endpoint) in compose.into_iter().flatten() {
            add("x-wharf.engines", platform, endpoint)?;
        }
        for item in env
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let Some((platform, endpoint)) = item.split_once('=') else {
                return Err(RoutesError::Invalid {
                    source_name: "WHARF_ENGINES",
                    message: format!("`{item}` is not PLATFORM=ENDPOINT (e.g. linux/arm64=unix:///run/arm64.sock)"),
                });
            };
            add("WHARF_ENGINES", platform, endpoint)?;
        }
        Ok(Routes(routes))
    }

    /// The endpoint that builds `platform`, when it is not the default engine.
    pub fn endpoint(&self, platform: &Platform) -> Option<&str> {
        self.0.get(platform).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Platform, &str)> {
        self.0.iter().map(|(p, e)| (p, e.as_str()))
    }
}

/// The engines of a run, connected: the default one and each routed endpoint.
#[derive(Clone)]
pub struct Engines {
    pub default: Docker,
    routed: HashMap<String, Docker>,
}

impl Engines {
    /// Only the default engine.
    pub fn single(default: Docker) -> Engines {
        Engines {
            default,
            routed: HashMap::new(),
        }
    }

    /// Connects to every endpoint of `routes` (negotiating each one's API version).
    pub async fn connect(default: Docker, routes: &Routes) -> Result<Engines, RoutesError> {
        let mut routed = HashMap::new();
        for (platform, endpoint) in routes.iter() {
            if routed.contains_key(endpoint) {
                continue;
            }
            let docker = crate::daemon::connect_to(endpoint)
                .await
                .map_err(|message| RoutesError::Unreachable {
                    platform: platform.to_string(),
                    endpoint: endpoint.to_string(),
                    message,
                })?;
            routed.insert(endpoint.to_string(), docker);
        }
        Ok(Engines { default, routed })
    }

    /// The engine at `endpoint` (`None`: the default one).
    pub fn get(&self, endpoint: Option<&str>) -> &Docker {
        endpoint
            .and_then(|e| self.routed.get(e))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_per_platform() {
        let compose = BTreeMap::from([
            ("linux/arm64/v8".to_string(), "tcp://arm:2376".to_string()),
            (
                "linux/amd64".to_string(),
                "unix:///run/x86.sock".to_string(),
            ),
        ]);
        let routes =
            Routes::new(Some(&compose), Some("linux/aarch64=unix:///run/arm64.sock")).unwrap();
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(routes.endpoint(&arm64), Some("unix:///run/arm64.sock"));
        assert_eq!(
            routes.endpoint(&Platform::parse("linux/amd64").unwrap()),
            Some("unix:///run/x86.sock")
        );
        assert!(routes
            .endpoint(&Platform::parse("linux/s390x").unwrap())
            .is_none());
        let e = Routes::new(None, Some("linux/arm64")).unwrap_err();
        assert!(e.to_string().starts_with("WHARF_ENGINES"), "{e}");
        let routes = Routes::new(None, Some("linux/arm64=ssh://me@arm:2222")).unwrap();
        assert_eq!(routes.endpoint(&arm64), Some("ssh://me@arm:2222"));
        for bad in [
            "ssh://",
            "ssh://arm:ssh",
            "tcp://",
            "unix://",
            "http://arm:2375",
        ] {
            let e = Routes::new(None, Some(&format!("linux/arm64={bad}"))).unwrap_err();
            assert!(
                e.to_string().contains("write unix://")
                    || e.to_string().contains("write ssh://HOST"),
                "{e}"
            );
        }
        let bad = BTreeMap::from([("arm64".to_string(), "unix:///x".to_string())]);
        assert!(Routes::new(Some(&bad), None).is_err());
    }
}
