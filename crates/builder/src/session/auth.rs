//! The Auth service: registry credentials for the daemon's pulls, from the Docker config.
//!
//! The daemon asks for a registry host's credentials when a `FROM` image (or a cache source)
//! needs them. The answer comes from where the docker CLI would take it: `auths`,
//! `credsStore` and `credHelpers` of the Docker config, running helper binaries as docker
//! does. Credentials only pass through memory; nothing is logged.
//!
//! The token methods stay unavailable: the daemon then fetches registry tokens itself with the
//! credentials, as it does for the docker CLI unless a token authority is configured.

use bollard::moby::filesync::v1::auth_server::Auth;
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
pub(crate) struct AuthService;

/// The Docker config's key for a registry host the daemon names.
fn config_key(host: &str) -> &str {
    match host {
        // Docker Hub's credentials live under its legacy index address.
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => "https://index.docker.io/v1/",
        h => h,
    }
}

fn credentials(host: &str) -> Result<CredentialsResponse, Status> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    match docker_credential::get_credential(config_key(host)) {
        Ok(DockerCredential::UsernamePassword(username, secret)) => {
            Ok(CredentialsResponse { username, secret })
        }
        Ok(DockerCredential::IdentityToken(secret)) => Ok(CredentialsResponse {
            username: String::new(),
            secret,
        }),
        // No credentials: the daemon pulls anonymously.
        Err(E::ConfigNotFound | E::ConfigReadError | E::NoCredentialConfigured) => {
            Ok(CredentialsResponse::default())
        }
        // What the docker CLI also takes as "none" (credentials.IsErrCredentialsNotFound).
        Err(E::HelperFailure { stdout, .. }) if stdout.contains("credentials not found") => {
            Ok(CredentialsResponse::default())
        }
        // A failing helper reports its error on stdout, by the helpers' protocol.
        Err(E::HelperFailure { helper, stdout, .. }) => Err(Status::unavailable(format!(
            "credentials for {host}: the credential helper `{helper}` failed: {}",
            stdout.trim()
        ))),
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
    fn docker_hub_is_looked_up_under_its_index_address() {
        assert_eq!(
            config_key("registry-1.docker.io"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
