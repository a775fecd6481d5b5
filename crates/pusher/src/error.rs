//! Errors of the pusher, each naming the registry (and repository) it concerns and what to do.
//!
//! What decides a retry travels with the error: a [`Fault`] (the HTTP status, the registry's
//! error code and whether another try may help) is set where the error is made — the registry
//! API calls in [`crate::api`], the daemon's push stream in [`crate::push`] — and nothing later
//! searches an error's text to find it again.

use std::time::Duration;

/// Whether another try of the same request may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A server error, throttling, a dropped connection or a deadline: worth another try.
    Transient,
    /// The registry refused the request for what it is (denied, invalid, unsupported).
    Permanent,
    /// An immutable repository refused to point an existing tag elsewhere. Not retried;
    /// the release checks whether the tag already names the very image it pushes.
    ImmutableTag,
}

/// The error codes of the distribution specification (and ECR's), as wharf tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegistryCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    NotFound,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// A code outside the specification, as the registry sent it.
    Other(String),
}

impl RegistryCode {
    pub fn from_oci(code: &oci_client::errors::OciErrorCode) -> RegistryCode {
        use oci_client::errors::OciErrorCode as O;
        match code {
            O::BlobUnknown => RegistryCode::BlobUnknown,
            O::BlobUploadInvalid => RegistryCode::BlobUploadInvalid,
            O::BlobUploadUnknown => RegistryCode::BlobUploadUnknown,
            O::DigestInvalid => RegistryCode::DigestInvalid,
            O::ManifestBlobUnknown => RegistryCode::ManifestBlobUnknown,
            O::ManifestInvalid => RegistryCode::ManifestInvalid,
            O::ManifestUnknown => RegistryCode::ManifestUnknown,
            O::ManifestUnverified => RegistryCode::Other("MANIFEST_UNVERIFIED".into()),
            O::NameInvalid => RegistryCode::NameInvalid,
            O::NameUnknown => RegistryCode::NameUnknown,
            O::NotFound => RegistryCode::NotFound,
            O::SizeInvalid => RegistryCode::SizeInvalid,
            O::TagInvalid => RegistryCode::TagInvalid,
            O::Unauthorized => RegistryCode::Unauthorized,
            O::Denied => RegistryCode::Denied,
            O::Unsupported => RegistryCode::Unsupported,
            O::Toomanyrequests => RegistryCode::TooManyRequests,
            O::Other(s) => RegistryCode::Other(s.clone()),
        }
    }
}

/// What a registry answered (or failed to answer), as far as it decides what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The HTTP status, when the registry answered with one the client kept.
    pub status: Option<u16>,
    /// The first error code of the registry's error document, when it sent one.
    pub code: Option<RegistryCode>,
    pub kind: FaultKind,
}

impl Fault {
    pub fn transient() -> Fault {
        Fault {
            status: None,
            code: None,
            kind: FaultKind::Transient,
        }
    }

    pub fn permanent() -> Fault {
        Fault {
            status: None,
            code: None,
            kind: FaultKind::Permanent,
        }
    }

    /// The kind an HTTP status alone implies: server errors, throttling and request timeouts
    /// may pass; every other refusal stays.
    pub fn from_status(status: u16) -> Fault {
        let kind = if status >= 500 || status == 429 || status == 408 {
            FaultKind::Transient
        } else {
            FaultKind::Permanent
        };
        Fault {
            status: Some(status),
            code: None,
            kind,
        }
    }
}

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

    #[error("{registry}: {error}")]
    Aws {
        registry: String,
        error: Box<crate::aws_failure::AwsError>,
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

    #[error("the registry {registry} did not answer {request} within {}s (--timeout)", after.as_secs_f64())]
    Timeout {
        registry: String,
        /// The request (`GET …/manifests/latest`, `push of …`).
        request: String,
        after: Duration,
    },

    #[error("registry {registry}: {message}")]
    Registry {
        registry: String,
        message: String,
        fault: Fault,
    },

    #[error("pushing {reference} failed: {message}")]
    Push {
        reference: String,
        message: String,
        fault: Fault,
    },
}

impl Error {
    /// Whether another try may help, as decided where the error was made.
    pub fn kind(&self) -> FaultKind {
        match self {
            // A registry that is restarting, or a connection that failed once, may answer the
            // next try; one that is not there at all fails after the policy's few tries.
            Error::Unreachable { .. } | Error::Timeout { .. } => FaultKind::Transient,
            Error::Registry { fault, .. } | Error::Push { fault, .. } => fault.kind,
            Error::Aws { error, .. } if !error.is_configuration() => FaultKind::Transient,
            _ => FaultKind::Permanent,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind() == FaultKind::Transient
    }

    /// The HTTP status the registry answered with, when known.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { status, .. } => Some(*status),
            Error::Registry { fault, .. } | Error::Push { fault, .. } => fault.status,
            _ => None,
        }
    }

    /// Whether the registry could not be used at all (no answer, or refused credentials): a
    /// configuration problem found before anything was built.
    pub fn is_unusable_registry(&self) -> bool {
        match self {
            Error::Aws { error, .. } => error.is_configuration(),
            _ => matches!(
                self,
                Error::Unauthorized { .. } | Error::Unreachable { .. } | Error::Timeout { .. }
            ),
        }
    }
}
