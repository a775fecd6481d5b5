//! Errors of the pusher, each naming the registry (and repository) it concerns and what to do.

/// Something went wrong talking to AWS, a registry or the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{given}` is not a registry: {why}")]
    InvalidRegistry { given: String, why: String },

    #[error("could not get a login token for {registry} from {service}: {message}")]
    Token {
        registry: String,
        service: &'static str,
        message: String,
    },

    #[error("could not read Docker credentials for {registry}: {message}")]
    DockerConfig { registry: String, message: String },

    #[error("the registry {registry} refused the credentials (HTTP {status}): {hint}")]
    Unauthorized {
        registry: String,
        status: u16,
        hint: String,
    },

    #[error("{reference} does not exist in its registry")]
    NotFound { reference: String },

    #[error("cannot reach the registry {registry}: {message}")]
    Unreachable { registry: String, message: String },

    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },

    #[error("pushing {reference} failed: {message}")]
    Push { reference: String, message: String },
}
