//! AWS failures as one clear message each: what was asked, what went wrong, what fixes it.
//!
//! The SDK's own errors print as nested debug structures (`DispatchFailure(DispatchFailure {
//! source: ConnectorError { … } })`). Here each failure is told apart by type — the credential
//! chain's [`CredentialsError`] variants, the dispatch failure's kind, the endpoint resolver's
//! error, and the service's error code from the SDK's error metadata — and rendered with the
//! fix a user needs.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
use aws_smithy_runtime_api::client::result::SdkError;
use std::error::Error as StdError;
use std::fmt;

/// The AWS call that failed, by the IAM action that allows it (`ecr:GetAuthorizationToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsCall {
    pub action: &'static str,
    /// Another action the call needs behind the scenes (ECR Public's token is an STS bearer
    /// token: `sts:GetServiceBearerToken`).
    pub also: Option<&'static str>,
}

impl AwsCall {
    pub const fn new(action: &'static str) -> AwsCall {
        AwsCall { action, also: None }
    }

    pub const fn also_needing(self, action: &'static str) -> AwsCall {
        AwsCall {
            also: Some(action),
            ..self
        }
    }

    /// The service and operation as AWS documents them (`ECR GetAuthorizationToken`).
    fn describe(&self) -> String {
        let (service, operation) = self.action.split_once(':').unwrap_or(("", self.action));
        let service = match service {
            "ecr" => "ECR",
            "ecr-public" => "ECR Public",
            "sts" => "STS",
            "ecs" => "ECS",
            other => other,
        };
        format!("{service} {operation}")
    }
}

/// Why an AWS call failed, as far as it decides what the user should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsFailureKind {
    /// No source of the credential chain gave credentials.
    NoCredentials,
    /// A credential source is configured but failed (a broken profile, an SSO session that
    /// must be renewed, a web identity token that was refused).
    CredentialSource,
    /// The credentials were accepted once but have expired.
    ExpiredToken,
    /// AWS does not know the credentials (a wrong or revoked key, a signature mismatch).
    InvalidCredentials,
    /// No region configured.
    NoRegion,
    /// The region does not name an endpoint of the service.
    BadRegion,
    /// The caller's policy does not allow the call.
    AccessDenied,
    /// AWS kept throttling the call through the SDK's retries.
    Throttled,
    /// No answer: DNS, connection or deadline.
    Unreachable { timed_out: bool },
    /// Any other answer of the service, with its error code when it sent one.
    Service { code: Option<String> },
}

/// An AWS call that failed, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AwsError {
    pub call: AwsCall,
    pub kind: AwsFailureKind,
    /// The region the call went to, when one was configured.
    pub region: Option<String>,
    /// What AWS (or the credential source) said, one line, no debug structures.
    pub detail: String,
}

/// The error codes services use for an expired session or request.
const EXPIRED_CODES: &[&str] = &["ExpiredToken", "ExpiredTokenException", "RequestExpired"];
/// The error codes services use for credentials they do not know.
const INVALID_CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
];
/// The error codes of a denied call.
const DENIED_CODES: &[&str] = &["AccessDeniedException", "AccessDenied"];

impl AwsError {
    /// The failure of `call` in `region`, told apart by the error's types and codes.
    pub fn from_sdk<E, R>(
        call: AwsCall,
        region: Option<&str>,
        err: &SdkError<E, R>,
    ) -> Box<AwsError>
    where
        E: ProvideErrorMetadata + StdError + 'static,
        R: fmt::Debug + 'static,
    {
        let (kind, detail) = classify(err);
        Box::new(AwsError {
            call,
            kind,
            region: region.map(str::to_string),
            detail,
        })
    }

    /// A call that cannot be made because no region is configured.
    pub fn no_region(call: AwsCall) -> Box<AwsError> {
        Box::new(AwsError {
            call,
            kind: AwsFailureKind::NoRegion,
            region: None,
            detail: String::new(),
        })
    }

    /// Whether the user's setup, not the moment, is at fault: nothing is worth a retry.
    pub fn is_configuration(&self) -> bool {
        !matches!(
            self.kind,
            AwsFailureKind::Throttled | AwsFailureKind::Unreachable { .. }
        )
    }
}

fn classify<E, R>(err: &SdkError<E, R>) -> (AwsFailureKind, String)
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: fmt::Debug + 'static,
{
    // A credential failure surfaces as a dispatch failure: look for the chain's own error.
    if let Some(creds) = find_in_chain::<CredentialsError>(err) {
        let kind = match creds {
            CredentialsError::CredentialsNotLoaded(_) => AwsFailureKind::NoCredentials,
            CredentialsError::ProviderTimedOut(_) => AwsFailureKind::NoCredentials,
            _ => AwsFailureKind::CredentialSource,
        };
        return (kind, chain_text(creds));
    }
    // A region the endpoint rules refuse: before any request (each service crate has its own
    // parameter error type) or while resolving.
    if find_in_chain::<aws_sdk_sts::config::endpoint::InvalidParams>(err).is_some()
        || find_in_chain::<aws_sdk_ecr::config::endpoint::InvalidParams>(err).is_some()
        || find_in_chain::<aws_sdk_ecrpublic::config::endpoint::InvalidParams>(err).is_some()
    {
        return (AwsFailureKind::BadRegion, String::new());
    }
    if let Some(e) = find_in_chain::<ResolveEndpointError>(err) {
        return (AwsFailureKind::BadRegion, chain_text(e));
    }
    if let Some(service) = err.as_service_error() {
        let code = service.code();
        let message = service.message().unwrap_or_default().to_string();
        let kind = match code {
            Some(c) if DENIED_CODES.contains(&c) => AwsFailureKind::AccessDenied,
            Some(c) if EXPIRED_CODES.contains(&c) => AwsFailureKind::ExpiredToken,
            Some(c) if INVALID_CREDENTIAL_CODES.contains(&c) => AwsFailureKind::InvalidCredentials,
            Some(c) if aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&c) => {
                AwsFailureKind::Throttled
            }
            _ => AwsFailureKind::Service {
                code: code.map(str::to_string),
            },
        };
        let detail = match code {
            Some(c) if message.is_empty() => c.to_string(),
            Some(c) => format!("{c}: {message}"),
            None => message,
        };
        return (kind, detail);
    }
    match err {
        SdkError::TimeoutError(_) => (
            AwsFailureKind::Unreachable { timed_out: true },
            "no answer within the deadline (--timeout)".into(),
        ),
        SdkError::DispatchFailure(d) => {
            let detail = d
                .as_connector_error()
                .map(|c| chain_text(c))
                .unwrap_or_default();
            (
                AwsFailureKind::Unreachable {
                    timed_out: d.is_timeout(),
                },
                detail,
            )
        }
        _ => (AwsFailureKind::Service { code: None }, chain_text(err)),
    }
}

/// The first error of type `T` in `err`'s source chain (itself included).
fn find_in_chain<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        next = e.source();
    }
    None
}

/// An error and its causes, each by its `Display`, joined on one line (repeats dropped: the
/// SDK's wrappers often repeat their source's message).
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

const CREDENTIAL_SOURCES: &str = "the environment (AWS_ACCESS_KEY_ID), the shared config and \
    credentials files (AWS_PROFILE, including SSO), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), \
    the ECS container endpoint and the EC2 instance metadata service (IMDS)";

const CREDENTIAL_FIX: &str = "on a laptop run `aws sso login --profile NAME` and set \
    AWS_PROFILE=NAME (or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); in CI assume the \
    release role first (GitHub Actions: aws-actions/configure-aws-credentials with OIDC)";

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = self.call.describe();
        let region = self.region.as_deref().unwrap_or("(none)");
        let said = if self.detail.is_empty() {
            String::new()
        } else {
            format!(" (AWS said: {})", self.detail)
        };
        match &self.kind {
            AwsFailureKind::NoCredentials => write!(
                f,
                "no AWS credentials found for {call}. Tried {CREDENTIAL_SOURCES}; none gave \
                 credentials. To fix: {CREDENTIAL_FIX}"
            ),
            AwsFailureKind::CredentialSource => write!(
                f,
                "the AWS credential source failed for {call}: {}. If this is an SSO profile, \
                 run `aws sso login` again; otherwise check the profile (AWS_PROFILE) or the CI \
                 role",
                self.detail
            ),
            AwsFailureKind::ExpiredToken => write!(
                f,
                "the AWS credentials have expired ({call}){said}. Renew them: `aws sso login` \
                 for an SSO profile, new session credentials (AWS_SESSION_TOKEN) otherwise; in \
                 CI, assume the role again"
            ),
            AwsFailureKind::InvalidCredentials => write!(
                f,
                "AWS does not accept these credentials ({call}){said}. Check AWS_ACCESS_KEY_ID \
                 / AWS_SECRET_ACCESS_KEY or the profile (AWS_PROFILE); {CREDENTIAL_FIX}"
            ),
            AwsFailureKind::NoRegion => write!(
                f,
                "{call} needs an AWS region and none is configured: set AWS_REGION (or \
                 `region` in the profile), or name the registry host \
                 (ACCOUNT.dkr.ecr.REGION.amazonaws.com)"
            ),
            AwsFailureKind::BadRegion => write!(
                f,
                "`{region}` is not a region {call} can be called in{said}: check AWS_REGION or \
                 the profile's `region`"
            ),
            AwsFailureKind::AccessDenied => {
                let needs = match self.call.also {
                    Some(also) => format!("`{}` and `{also}`", self.call.action),
                    None => format!("`{}`", self.call.action),
                };
                write!(
                    f,
                    "access denied: the caller may not call {call}{said}. Its IAM policy needs \
                     {needs}; `wharf iam-policy` prints every action this project's release needs"
                )
            }
            AwsFailureKind::Throttled => write!(
                f,
                "AWS kept throttling {call} through every retry{said}. Try again in a \
                 minute, run fewer releases at once on this account, or allow more attempts \
                 (AWS_MAX_ATTEMPTS)"
            ),
            AwsFailureKind::Unreachable { timed_out } => {
                let what = if *timed_out {
                    "did not answer in time"
                } else {
                    "could not be reached"
                };
                write!(
                    f,
                    "{call} in region {region} {what}{said}. Check the network, the region \
                     (AWS_REGION) and any endpoint override (AWS_ENDPOINT_URL)"
                )
            }
            AwsFailureKind::Service { .. } => write!(f, "{call} failed{said}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_name_their_service_and_operation() {
        assert_eq!(
            AwsCall::new("ecr-public:GetAuthorizationToken").describe(),
            "ECR Public GetAuthorizationToken"
        );
        assert_eq!(
            AwsCall::new("sts:GetCallerIdentity").describe(),
            "STS GetCallerIdentity"
        );
    }

    #[test]
    fn a_denied_call_names_its_action_and_the_policy_command() {
        let e = AwsError {
            call: AwsCall::new("ecr:DescribeRepositories"),
            kind: AwsFailureKind::AccessDenied,
            region: Some("us-east-1".into()),
            detail: "AccessDeniedException: not authorized".into(),
        };
        let text = e.to_string();
        assert!(text.contains("`ecr:DescribeRepositories`"), "{text}");
        assert!(text.contains("wharf iam-policy"), "{text}");
        assert!(e.is_configuration());
    }

    #[test]
    fn chains_print_each_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "outer")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("dns error"));
        assert_eq!(chain_text(&e), "outer: dns error");
        assert!(find_in_chain::<std::io::Error>(&e).is_some());
    }
}
