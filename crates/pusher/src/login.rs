//! Registry credentials: from ECR, ECR Public or the Docker config, in memory only.
//!
//! Nothing here writes a credential anywhere: no `docker login`, no config file. A [`Login`]
//! hands its password only to the daemon (as `X-Registry-Auth`) and to the registry API.

use crate::aws_failure::{AwsCall, AwsError};
use crate::Error;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use std::time::{Duration, SystemTime};

/// Credentials for one registry host.
#[derive(Clone)]
pub struct Login {
    /// The registry host (`HOST[:PORT]`), as images are named.
    pub host: String,
    pub username: String,
    pub password: SecretString,
    /// When the token stops working, if the issuer said.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Login {
    /// The credentials in the form the daemon takes them (`X-Registry-Auth`).
    pub fn docker_credentials(&self) -> bollard::auth::DockerCredentials {
        bollard::auth::DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.password.expose_secret().to_string()),
            serveraddress: Some(self.host.clone()),
            ..Default::default()
        }
    }

    /// `base64(username:password)`: the form ECR hands the token out in and registries take
    /// as Basic authorization — as secret as the password itself.
    pub fn token(&self) -> SecretString {
        let plain = format!("{}:{}", self.username, self.password.expose_secret());
        base64::engine::general_purpose::STANDARD
            .encode(plain)
            .into()
    }

    /// The credentials in the form the registry API client takes them.
    pub fn registry_auth(&self) -> oci_client::secrets::RegistryAuth {
        oci_client::secrets::RegistryAuth::Basic(
            self.username.clone(),
            self.password.expose_secret().to_string(),
        )
    }
}

/// How long before its expiry a token is renewed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(600);

/// Whether a login should be renewed at `now`: its token runs out within [`REFRESH_MARGIN`].
/// A token whose expiry is already past is not renewed — emulators hand out such tokens, and a
/// real expired token fails with a clear registry error — so callers can never loop on it.
pub fn needs_refresh(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    expires_at.is_some_and(|t| t > now && t < now + REFRESH_MARGIN)
}

/// Loads AWS settings through the SDK's default chain: environment, profiles (`AWS_PROFILE`,
/// SSO), web identity (GitHub Actions OIDC), container and instance metadata; endpoint
/// overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ECR_PUBLIC`) included. Every call gets
/// the run's deadlines: connecting, and each attempt of an operation (the SDK retries
/// throttling and server errors itself).
pub async fn aws_config(timeouts: &crate::timeouts::Timeouts) -> SdkConfig {
    let deadlines = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(timeouts.request.min(Duration::from_secs(10)))
        .operation_attempt_timeout(timeouts.request)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::tls::aws_http_client())
        .timeout_config(deadlines)
        .load()
        .await
}

/// Splits a base64 `user:password` token as ECR and ECR Public hand it out.
fn decode_token(
    token: &str,
    registry: &str,
    service: &'static str,
) -> Result<(String, SecretString), Error> {
    let bad = |message: &str| Error::Token {
        registry: registry.to_string(),
        service,
        message: message.to_string(),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad("the authorization token is not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| bad("the authorization token is not text"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| bad("the authorization token is not user:password"))?;
    Ok((user.to_string(), SecretString::from(password.to_string())))
}

/// The account of the caller (STS GetCallerIdentity), for `--registry ecr`.
pub async fn caller_account(sdk: &SdkConfig) -> Result<String, Error> {
    const CALL: AwsCall = AwsCall::new("sts:GetCallerIdentity");
    let region = sdk.region().map(|r| r.to_string());
    let aws = |error| Error::Aws {
        registry: "ecr".into(),
        error,
    };
    if region.is_none() {
        return Err(aws(AwsError::no_region(CALL)));
    }
    let sts = aws_sdk_sts::Client::new(sdk);
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws(AwsError::from_sdk(CALL, region.as_deref(), &e)))?;
    out.account()
        .map(str::to_string)
        .ok_or_else(|| Error::Token {
            registry: "ecr".into(),
            service: "STS GetCallerIdentity",
            message: "the answer named no account".into(),
        })
}

/// A private ECR login: GetAuthorizationToken in `region` (the configured one when `None`), the
/// registry host taken from the token's proxy endpoint. The token also opens other accounts'
/// registries in that region that the caller may use (cross-account pushes): callers pushing
/// there keep the token and use their own host.
pub async fn ecr(sdk: &SdkConfig, region: Option<&str>) -> Result<Login, Error> {
    const CALL: AwsCall = AwsCall::new("ecr:GetAuthorizationToken");
    let region = region
        .map(str::to_string)
        .or_else(|| sdk.region().map(|r| r.to_string()));
    let what = match &region {
        Some(r) => format!("private ECR in {r}"),
        None => "private ECR".to_string(),
    };
    let Some(region) = region else {
        return Err(Error::Aws {
            registry: what,
            error: AwsError::no_region(CALL),
        });
    };
    let conf = aws_sdk_ecr::config::Builder::from(sdk).region(Region::new(region.clone()));
    let ecr = aws_sdk_ecr::Client::from_conf(conf.build());
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| Error::Aws {
            registry: what.clone(),
            error: AwsError::from_sdk(CALL, Some(&region), &e),
        })?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| Error::Token {
            registry: what.clone(),
            service: "ECR GetAuthorizationToken",
            message: "the answer held no authorization data".into(),
        })?;
    let token = data.authorization_token().unwrap_or_default();
    let (username, password) = decode_token(token, &what, "ECR GetAuthorizationToken")?;
    let endpoint = data.proxy_endpoint().ok_or_else(|| Error::Token {
        registry: what.clone(),
        service: "ECR GetAuthorizationToken",
        message: "the answer named no proxy endpoint".into(),
    })?;
    let host = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let expires_at = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok());
    Ok(Login {
        host,
        username,
        password,
        expires_at,
    })
}

/// An ECR Public login. The ecr-public API lives in us-east-1 only, whatever the configured
/// region.
pub async fn ecr_public(sdk: &SdkConfig) -> Result<Login, Error> {
    let conf = aws_sdk_ecrpublic::config::Builder::from(sdk)
        .region(Region::new("us-east-1"))
        .build();
    let client = aws_sdk_ecrpublic::Client::from_conf(conf);
    // ECR Public's token is an STS bearer token: a denial may name either action.
    const CALL: AwsCall =
        AwsCall::new("ecr-public:GetAuthorizationToken").also_needing("sts:GetServiceBearerToken");
    let out = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| Error::Aws {
            registry: crate::registry::ECR_PUBLIC_HOST.into(),
            error: AwsError::from_sdk(CALL, Some("us-east-1"), &e),
        })?;
    let data = out.authorization_data().ok_or_else(|| Error::Token {
        registry: crate::registry::ECR_PUBLIC_HOST.into(),
        service: "ECR Public GetAuthorizationToken",
        message: "the answer held no authorization data".into(),
    })?;
    let (username, password) = decode_token(
        data.authorization_token().unwrap_or_default(),
        crate::registry::ECR_PUBLIC_HOST,
        "ECR Public GetAuthorizationToken",
    )?;
    let expires_at = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok());
    Ok(Login {
        host: crate::registry::ECR_PUBLIC_HOST.into(),
        username,
        password,
        expires_at,
    })
}

/// Credentials for any other registry from the Docker config, as the docker CLI finds them
/// ([`wharf_docker::config`]); `None` means anonymous.
pub fn docker_config(host: &str) -> Result<Option<Login>, Error> {
    use wharf_docker::Credentials;
    match wharf_docker::DockerConfig::from_env().credentials(host) {
        Ok(Some(Credentials::Basic { username, password })) => Ok(Some(Login {
            host: host.to_string(),
            username,
            password,
            expires_at: None,
        })),
        Ok(Some(Credentials::IdentityToken(_))) => Err(Error::DockerConfig {
            registry: host.to_string(),
            message: "the Docker config holds an identity token (OAuth), which wharf cannot use; log in with a username and password or token".into(),
        }),
        Ok(None) => Ok(None),
        Err(e) => Err(Error::DockerConfig {
            registry: host.to_string(),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_and_stay_secret() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t-pass");
        let (user, pw) = decode_token(&token, "r", "svc").unwrap();
        assert_eq!(user, "AWS");
        assert_eq!(pw.expose_secret(), "s3cr3t-pass");
        let login = Login {
            host: "h".into(),
            username: user,
            password: pw,
            expires_at: None,
        };
        assert!(!format!("{login:?}").contains("s3cr3t"));
    }

    #[test]
    fn refresh_only_tokens_about_to_expire() {
        let now = SystemTime::now();
        let minute = Duration::from_secs(60);
        assert!(needs_refresh(Some(now + 5 * minute), now));
        assert!(
            !needs_refresh(Some(now + 11 * 60 * minute), now),
            "a fresh 12 h token"
        );
        assert!(
            !needs_refresh(None, now),
            "no expiry: Docker config credentials"
        );
        // An expiry in the past (moto says 2015) never triggers a refresh loop.
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_070_400);
        assert!(!needs_refresh(Some(long_ago), now));
    }

    #[test]
    fn bad_tokens_are_errors_without_the_token() {
        let e = decode_token("!!!not-base64", "reg", "svc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not base64") && !e.contains("!!!"), "{e}");
        let no_colon = base64::engine::general_purpose::STANDARD.encode("justonepart");
        let e = decode_token(&no_colon, "reg", "svc")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("user:password") && !e.contains("justonepart"),
            "{e}"
        );
    }
}
