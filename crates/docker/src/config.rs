//! The Docker config, and a registry's credentials from it, found where the docker CLI finds
//! them.
//!
//! The config is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. For a registry
//! host, a helper named in `credHelpers` for that host answers; else the host's entry in
//! `auths` (an `identitytoken`, a base64 `auth`, or `username` and `password`); else the
//! `credsStore` helper. Helpers are the programs `docker-credential-<name>` on `PATH`, asked
//! with `get` and the server address on stdin, as docker asks them. Docker Hub is looked up
//! under its legacy index address, `https://index.docker.io/v1/`, as `docker login` stores it.
//!
//! What counts as "no credentials" (anonymous access) is what docker counts: no config file,
//! nothing configured for the host, a helper answering `credentials not found in native
//! keychain`, and — with a warning, as docker prints one — a config file that cannot be read.
//! Any other helper failure is an error: pulling or pushing anonymously would only fail later
//! with a less helpful message.
//!
//! Credentials pass through memory only, wrapped in [`SecretString`]; nothing here logs them.

use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// Where Docker Hub's credentials are stored and how its helpers are asked for them.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

/// What a helper answers when it has nothing for the server (the `credentials` package's
/// `errCredentialsNotFoundMessage`); docker then goes on anonymously.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Credentials for one registry.
#[derive(Clone)]
pub enum Credentials {
    /// A user name and a password (or an access token used as one).
    Basic {
        username: String,
        password: SecretString,
    },
    /// An OAuth refresh token (`identitytoken`, or a helper's `<token>` user), which the
    /// daemon exchanges for an access token itself.
    IdentityToken(SecretString),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Why the Docker config could not give a registry's credentials. The messages never hold a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The helper ran and failed; by the helpers' protocol its message is on stdout.
    #[error("the credential helper `{helper}` failed: {message}")]
    Helper { helper: String, message: String },
    /// The helper the config names could not be run.
    #[error("a credential helper the Docker config names could not be run (`docker-credential-<name>` must be on PATH)")]
    HelperNotRun,
    /// The helper answered something that is not its protocol's JSON.
    #[error("a credential helper answered something that is not a credential")]
    HelperAnswer,
    /// An `auth` entry is not base64 of `user:password`.
    #[error("the `auth` entry in the Docker config is not base64 of user:password")]
    BadAuth,
    /// An `auth` entry says something else than the entry's `username` and `password`.
    #[error("the `auth` entry in the Docker config does not match its username and password")]
    AuthMismatch,
}

/// `HOST[:PORT]` of a registry address as docker compares them: the scheme, a trailing `/`
/// and Docker Hub's `/v1` left out, Docker Hub's aliases as `docker.io`, lowercase.
pub fn registry_host(address: &str) -> String {
    let host = address
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host = host.strip_suffix("/v1").unwrap_or(host);
    match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => "docker.io".to_string(),
        h => h.to_ascii_lowercase(),
    }
}

/// The key the Docker config keeps a registry host's credentials under (and what its helpers
/// are asked for): the host itself, except for Docker Hub.
pub fn config_key(host: &str) -> &str {
    match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => DOCKER_HUB_INDEX,
        h => h,
    }
}

/// The Docker config folder the docker CLI uses: `DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// A Docker config folder, read when credentials are asked for (so a `docker login` made
/// meanwhile is seen, as docker sees it).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    dir: Option<PathBuf>,
}

impl DockerConfig {
    /// The config the docker CLI would use ([`config_dir`]).
    pub fn from_env() -> Self {
        DockerConfig { dir: config_dir() }
    }

    /// The config in `dir` (the folder holding `config.json`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        DockerConfig {
            dir: Some(dir.into()),
        }
    }

    /// The folder, when there is one (no `DOCKER_CONFIG` and no `HOME`: none).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The credentials for registry `host` (`HOST[:PORT]`, as images name it); `None` means
    /// anonymous access, as docker would use.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>, CredentialsError> {
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let path = dir.join("config.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                unreadable(&path, &e.to_string());
                return Ok(None);
            }
        };
        let mut json: serde_json::Value = match serde_json::from_slice(&text) {
            Ok(j) => j,
            Err(e) => {
                unreadable(&path, &e.to_string());
                return Ok(None);
            }
        };
        let key = config_key(host);
        as_docker_reads(&mut json, key);
        let json = serde_json::to_vec(&json).expect("a JSON value serializes");
        match docker_credential::get_credential_from_reader(json.as_slice(), key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                Ok(Some(Credentials::Basic {
                    username,
                    password: SecretString::from(password),
                }))
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                Ok(Some(Credentials::IdentityToken(SecretString::from(token))))
            }
            Err(E::NoCredentialConfigured | E::ConfigNotFound) => Ok(None),
            Err(E::ConfigReadError) => {
                unreadable(&path, "it is not a Docker config");
                Ok(None)
            }
            Err(E::HelperFailure { stdout, .. }) if stdout.trim() == NOT_FOUND => Ok(None),
            Err(E::HelperFailure {
                helper,
                stdout,
                stderr,
            }) => {
                let message = match (stdout.trim(), stderr.trim()) {
                    ("", "") => "it exited with an error and said nothing".to_string(),
                    ("", err) => err.to_string(),
                    (out, _) => out.to_string(),
                };
                Err(CredentialsError::Helper { helper, message })
            }
            Err(E::HelperCommunicationError) => Err(CredentialsError::HelperNotRun),
            Err(E::MalformedHelperResponse) => Err(CredentialsError::HelperAnswer),
            Err(E::CredentialDecodingError) => Err(CredentialsError::BadAuth),
            Err(E::CredentialMismatchError) => Err(CredentialsError::AuthMismatch),
        }
    }
}

/// Shapes the config so that docker_credential's lookup (helper of the host, then `auths`,
/// then the store) gives docker's answer: docker asks `credsStore` for every host that has no
/// helper of its own and then never reads `auths` (where `docker login` leaves empty entries
/// when a store keeps the credentials), and takes an empty helper name as none.
fn as_docker_reads(json: &mut serde_json::Value, key: &str) {
    let named =
        |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty());
    let own_helper = named(json.get("credHelpers").and_then(|h| h.get(key)));
    let store = named(json.get("credsStore"));
    let Some(config) = json.as_object_mut() else {
        return;
    };
    if !store {
        config.remove("credsStore");
    } else if !own_helper {
        config.remove("auths");
    }
}

/// Docker goes on without the config it cannot load, after a warning.
fn unreadable(path: &Path, why: &str) {
    tracing::warn!(
        "the Docker config {} cannot be read ({why}): no registry credentials from it",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let config = DockerConfig::at(dir.path());
        (dir, config)
    }

    fn basic(c: Option<Credentials>) -> (String, String) {
        match c {
            Some(Credentials::Basic { username, password }) => {
                (username, password.expose_secret().to_string())
            }
            other => panic!("expected a user and password, got {other:?}"),
        }
    }

    #[test]
    fn auths_entries_in_each_form() {
        // base64("me:pw") is bWU6cHc=; Docker Hub lives under its index address.
        let (_d, c) = config(
            r#"{"auths": {
                "127.0.0.1:5000": {"auth": "bWU6cHc="},
                "https://quay.io": {"username": "u", "password": "p"},
                "https://index.docker.io/v1/": {"auth": "bWU6cHc="},
                "ghcr.io": {"identitytoken": "refresh-token"},
                "bad.example": {"auth": "!!!"}
            }}"#,
        );
        assert_eq!(
            basic(c.credentials("127.0.0.1:5000").unwrap()),
            ("me".into(), "pw".into())
        );
        assert_eq!(
            basic(c.credentials("quay.io").unwrap()),
            ("u".into(), "p".into())
        );
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(basic(c.credentials(hub).unwrap()).0, "me", "{hub}");
        }
        match c.credentials("ghcr.io").unwrap() {
            Some(Credentials::IdentityToken(t)) => assert_eq!(t.expose_secret(), "refresh-token"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.credentials("bad.example").unwrap_err(),
            CredentialsError::BadAuth
        );
        assert!(c.credentials("other.example").unwrap().is_none());
    }

    #[test]
    fn an_empty_store_name_is_no_store() {
        let (_d, c) =
            config(r#"{"credsStore": "", "auths": {"127.0.0.1:5000": {"auth": "bWU6cHc="}}}"#);
        assert_eq!(
            basic(c.credentials("127.0.0.1:5000").unwrap()),
            ("me".into(), "pw".into())
        );
        assert!(c.credentials("other.example").unwrap().is_none());
    }

    #[test]
    fn no_config_is_anonymous_and_an_unreadable_one_too() {
        let empty = tempfile::tempdir().unwrap();
        assert!(DockerConfig::at(empty.path())
            .credentials("x.io")
            .unwrap()
            .is_none());
        assert!(DockerConfig { dir: None }
            .credentials("x.io")
            .unwrap()
            .is_none());
        let (_d, c) = config("{not json");
        assert!(c.credentials("x.io").unwrap().is_none());
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let shown = format!(
            "{:?} {:?}",
            Credentials::Basic {
                username: "me".into(),
                password: SecretString::from("s3cr3t")
            },
            Credentials::IdentityToken(SecretString::from("t0ken"))
        );
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0ken"),
            "{shown}"
        );
        assert!(shown.contains("me"), "{shown}");
    }

    #[test]
    fn hosts_and_keys_as_docker_names_them() {
        assert_eq!(config_key("registry-1.docker.io"), DOCKER_HUB_INDEX);
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("registry-1.docker.io"), "docker.io");
        assert_eq!(registry_host("https://Quay.io/"), "quay.io");
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
