//! The targets whose traces would carry credentials or build-argument values, held to a level
//! where they do not, whatever `RUST_LOG` asks for.
//!
//! At trace level the AWS SDK logs every request and response with its body (ECR's
//! GetAuthorizationToken answer, STS's web-identity request), SigV4 the request it signs with
//! the session token; bollard logs at debug each request URI (build arguments, remote context
//! URLs) and JSON payload; the SSH agent library each request it serves. What is left at the
//! capped levels names operations, hosts and sizes, not contents.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// Each target prefix and the most verbose level it may log at.
const CAPS: &[(&str, LevelFilter)] = &[
    // Request and response bodies, signed headers, chunk contents.
    ("aws_smithy", LevelFilter::DEBUG),
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_runtime", LevelFilter::DEBUG),
    ("aws_config", LevelFilter::DEBUG),
    ("aws_sdk", LevelFilter::DEBUG),
    ("aws_credential_types", LevelFilter::DEBUG),
    // Wire dumps of HTTP clients and servers (hyper also covers hyper_util, hyper_rustls).
    ("hyper", LevelFilter::DEBUG),
    ("h2", LevelFilter::DEBUG),
    ("reqwest", LevelFilter::DEBUG),
    ("tonic", LevelFilter::DEBUG),
    ("oci_client", LevelFilter::DEBUG),
    // Request URIs and payloads at debug.
    ("bollard", LevelFilter::INFO),
    // Agent requests and responses at debug.
    ("ssh_agent_lib", LevelFilter::INFO),
];

/// A filter that lets everything through but the capped targets' verbose levels; combined
/// with the user's filter, never instead of it.
pub fn secret_guard() -> Targets {
    CAPS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, (target, level)| targets.with_target(*target, *level),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn capped_targets_lose_their_verbose_levels_only() {
        let guard = secret_guard();
        for (target, blocked) in [
            ("aws_smithy_runtime::client::orchestrator", Level::TRACE),
            ("aws_sigv4::http_request::sign", Level::TRACE),
            ("aws_sdk_ecr::operation", Level::TRACE),
            ("bollard::docker", Level::DEBUG),
            ("hyper_util::client", Level::TRACE),
        ] {
            assert!(
                !guard.would_enable(target, &blocked),
                "{target} at {blocked}"
            );
        }
        for (target, allowed) in [
            ("aws_smithy_runtime::client::orchestrator", Level::DEBUG),
            ("bollard::docker", Level::INFO),
            ("wharf_pusher::release", Level::TRACE),
            ("wharf", Level::TRACE),
        ] {
            assert!(
                guard.would_enable(target, &allowed),
                "{target} at {allowed}"
            );
        }
    }
}
