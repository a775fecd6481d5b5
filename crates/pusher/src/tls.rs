//! One TLS crypto library for the whole process: ring, which bollard and the BuildKit session
//! already use. reqwest (and oci-client through it) and the AWS SDK would each bring aws-lc-rs
//! otherwise, a second copy of every cipher in the binary.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Makes ring the process's rustls provider. reqwest is built without a provider of its own
/// and takes this one; building a client before it is installed would panic. Safe to call any
/// number of times: a provider already installed (here or by an embedding program) stays.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The AWS SDK's default HTTPS client (hyper 1, rustls, the system's root certificates, the
/// proxy settings of the environment), on ring.
pub fn aws_http_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}
