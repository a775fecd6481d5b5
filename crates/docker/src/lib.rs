//! wharf-docker: the docker client's conventions, ported from Go, in one place.
//!
//! What users expect of wharf is what the docker CLI, BuildKit and compose do with the same
//! input, and those are Go programs whose small conventions wharf must follow exactly. The
//! builder, the pusher and the compose reader all depend on some of them; each lives here once:
//! - [`config`]: the Docker config folder, and a registry's credentials from it
//!   (`credHelpers`, `credsStore`, `auths`), running credential helpers as docker does.
//! - [`reference`]: image references read as docker reads them (Docker Hub's `docker.io` and
//!   `library/`, the default tag `latest`, digests), with the forms docker prints.
//! - [`filepath`]: Go's lexical `path/filepath` functions (`Clean`, `Join`, `Rel`, `Match`, …),
//!   which compose's paths and Docker's ignore patterns are built on.
//!
//! `config` and `reference` are features (on by default): `filepath` alone needs no
//! dependency.

#[cfg(feature = "config")]
pub mod config;
pub mod filepath;
#[cfg(feature = "reference")]
pub mod reference;

#[cfg(feature = "config")]
pub use config::{Credentials, CredentialsError, DockerConfig};
#[cfg(feature = "reference")]
pub use reference::{ImageReference, ReferenceError};
