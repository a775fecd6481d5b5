//! The Secrets service: `RUN --mount=type=secret` reads the build's secrets from wharf.
//!
//! A secret is read when the daemon asks for it, from a file or from wharf's environment
//! (compose's `file:` and `environment:` sources), and only passes through memory. The limits
//! are BuildKit's client's: at most 500 KiB, and a file that cannot be read is an error before
//! the build starts.

use bollard::moby::buildkit::secrets::v1::secrets_server::Secrets;
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use std::collections::HashMap;
use tonic::{Request, Response, Status};
use wharf_compose::files::{self, Accept, FileError};
use wharf_compose::{BuildSecret, SecretSource};

/// BuildKit's `MaxSecretSize`.
const MAX_SECRET_SIZE: u64 = 500 * 1024;

#[derive(Debug)]
pub(crate) struct SecretsService {
    sources: HashMap<String, SecretSource>,
}

impl SecretsService {
    /// Checks the file sources as BuildKit's client does when a build starts.
    pub(crate) fn new(secrets: &[BuildSecret]) -> Result<Self, String> {
        let mut sources = HashMap::new();
        for s in secrets {
            if let SecretSource::File(path) = &s.source {
                files::check(path, Accept::RegularFile, MAX_SECRET_SIZE)
                    .map_err(|e| describe(&s.id, e))?;
            }
            sources.insert(s.id.clone(), s.source.clone());
        }
        Ok(SecretsService { sources })
    }
}

/// A secret file that cannot be used, in the words of BuildKit's client where it has some.
fn describe(id: &str, e: FileError) -> String {
    match e {
        FileError::TooLarge { path, .. } => format!(
            "secret {id}: {} is larger than the 500 KiB BuildKit accepts",
            path.display()
        ),
        other => format!("secret {id}: {other}"),
    }
}

fn read(id: &str, source: &SecretSource) -> Result<Vec<u8>, Status> {
    let data = match source {
        // Checked again as it is read: the file may have been swapped since the build started.
        SecretSource::File(path) => files::read(path, Accept::RegularFile, MAX_SECRET_SIZE)
            .map_err(|e| Status::unavailable(describe(id, e)))?,
        // As BuildKit's client: an unset variable is an empty secret.
        SecretSource::Environment(name) => std::env::var_os(name)
            .map(|v| v.into_encoded_bytes())
            .unwrap_or_default(),
    };
    if data.len() as u64 > MAX_SECRET_SIZE {
        return Err(Status::invalid_argument(format!(
            "invalid secret size {}",
            data.len()
        )));
    }
    Ok(data)
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        tracing::debug!(%id, "the daemon asks for a secret");
        let Some(source) = self.sources.get(&id).cloned() else {
            return Err(Status::not_found(format!("secret {id} not found")));
        };
        let data = tokio::task::spawn_blocking(move || read(&id, &source))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(GetSecretResponse { data }))
    }
}
