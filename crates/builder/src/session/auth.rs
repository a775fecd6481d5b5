//! The Auth service: registry credentials for the daemon's pulls.
//!
//! The daemon asks for a registry host's credentials when a `FROM` image (or a cache source)
//! needs them. The answer comes first from the credentials the caller handed in
//! ([`RegistryCredentials`], e.g. an ECR login made in memory), else from the Docker config as
//! the docker CLI reads it ([`wharf_docker::config`]: `credHelpers`, `credsStore`, `auths`,
//! helper binaries run as docker runs them). Credentials only pass through memory; nothing is
//! logged.
//!
//! The token methods stay unavailable: the daemon then fetches registry tokens itself with the
//! credentials, as it does for the docker CLI unless a token authority is configured.

use bollard::moby::filesync::v1::auth_server::Auth;
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tonic::{Request, Response, Status};
use wharf_docker::config::{config_key, registry_host, Credentials, DockerConfig};

/// Registry credentials the caller hands in, per registry host (`HOST[:PORT]`, as images are
/// named), used before the Docker config's. A cheap handle: clones share the same entries, so
/// credentials inserted after a build was prepared (a login made later) still reach it.
/// Passwords stay in memory, are never logged, and `Debug` shows only the hosts.
#[derive(Clone, Default)]
pub struct RegistryCredentials {
    entries: Arc<RwLock<HashMap<String, Entry>>>,
}

struct Entry {
    username: String,
    password: SecretString,
}

impl RegistryCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the credentials of `host`.
    pub fn insert(&self, host: &str, username: &str, password: SecretString) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            registry_host(host),
            Entry {
                username: username.to_string(),
                password,
            },
        );
    }

    /// Forgets the credentials of `host`.
    pub fn remove(&self, host: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(&registry_host(host));
    }

    pub fn is_empty(&self) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The hosts that have credentials.
    pub fn hosts(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut hosts: Vec<String> = entries.keys().cloned().collect();
        hosts.sort();
        hosts
    }

    fn get(&self, host: &str) -> Option<CredentialsResponse> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&registry_host(host))
            .map(|e| CredentialsResponse {
                username: e.username.clone(),
                secret: e.password.expose_secret().to_string(),
            })
    }

    /// The credentials in the form the classic builder takes them (`X-Registry-Config`).
    pub(crate) fn docker_credentials(&self) -> HashMap<String, bollard::auth::DockerCredentials> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(host, e)| {
                // The classic builder looks Docker Hub up under its index address.
                let address = config_key(host).to_string();
                (
                    address.clone(),
                    bollard::auth::DockerCredentials {
                        username: Some(e.username.clone()),
                        password: Some(e.password.expose_secret().to_string()),
                        serveraddress: Some(address),
                        ..Default::default()
                    },
                )
            })
            .collect()
    }
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("hosts", &self.hosts())
            .finish()
    }
}

#[derive(Debug, Default)]
pub(crate) struct AuthService {
    handed: RegistryCredentials,
}

impl AuthService {
    pub(crate) fn new(handed: RegistryCredentials) -> Self {
        AuthService { handed }
    }
}

/// The Docker config's credentials for `host`, in the form the session answers with.
fn credentials(host: &str) -> Result<CredentialsResponse, Status> {
    match DockerConfig::from_env().credentials(host) {
        Ok(Some(Credentials::Basic { username, password })) => Ok(CredentialsResponse {
            username,
            secret: password.expose_secret().to_string(),
        }),
        // The daemon exchanges an identity token itself; BuildKit takes it without a user.
        Ok(Some(Credentials::IdentityToken(token))) => Ok(CredentialsResponse {
            username: String::new(),
            secret: token.expose_secret().to_string(),
        }),
        // No credentials: the daemon pulls anonymously.
        Ok(None) => Ok(CredentialsResponse::default()),
        Err(e) => Err(Status::unavailable(format!(
            "credentials for {host} from the Docker config: {e}"
        ))),
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        tracing::debug!(%host, "the daemon asks for registry credentials");
        if let Some(answer) = self.handed.get(&host) {
            return Ok(Response::new(answer));
        }
        // Credential helpers are programs: run them off the async threads.
        let answer = tokio::task::spawn_blocking(move || credentials(&host))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(answer))
    }

    async fn fetch_token(
        &self,
        _request: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unavailable(
            "client-side token fetching is not offered",
        ))
    }

    async fn get_token_authority(
        &self,
        _request: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unavailable("client-side authentication disabled"))
    }

    async fn verify_token_authority(
        &self,
        _request: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unavailable("client-side authentication disabled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handed_in_credentials_are_found_by_host_and_never_shown() {
        let c = RegistryCredentials::new();
        assert!(c.is_empty());
        c.insert(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "AWS",
            SecretString::from("token-value"),
        );
        c.insert(
            "https://index.docker.io/v1/",
            "me",
            SecretString::from("hub"),
        );
        let shared = c.clone();
        let got = shared
            .get("123456789012.dkr.ecr.us-east-1.amazonaws.com")
            .unwrap();
        assert_eq!(
            (got.username.as_str(), got.secret.as_str()),
            ("AWS", "token-value")
        );
        assert_eq!(shared.get("registry-1.docker.io").unwrap().secret, "hub");
        assert!(shared.get("127.0.0.1:5000").is_none());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("token-value") && shown.contains("docker.io"),
            "{shown}"
        );
        let classic = c.docker_credentials();
        assert_eq!(
            classic["https://index.docker.io/v1/"].password.as_deref(),
            Some("hub")
        );
        c.remove("docker.io");
        assert!(shared.get("registry-1.docker.io").is_none());
    }
}
