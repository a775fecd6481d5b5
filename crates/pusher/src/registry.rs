//! Where images go: the registry forms of the command-line contract.

use crate::Error;

/// A registry as the user names it, before any login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registry {
    /// `ecr`: the private ECR registry of the caller's account in the configured region.
    EcrOfCaller,
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (also `-fips` and `.amazonaws.com.cn`).
    Ecr {
        account: String,
        region: String,
        host: String,
    },
    /// `public.ecr.aws/ALIAS`.
    EcrPublic { alias: String },
    /// Any other `HOST[:PORT][/NAMESPACE]`.
    Other {
        host: String,
        namespace: Option<String>,
    },
}

pub const ECR_PUBLIC_HOST: &str = "public.ecr.aws";

impl Registry {
    /// Parses `REG` of `--registry REG`.
    pub fn parse(given: &str) -> Result<Registry, Error> {
        let invalid = |why: &str| Error::InvalidRegistry {
            given: given.to_string(),
            why: why.to_string(),
        };
        let s = given.trim().trim_end_matches('/');
        let s = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        if s.is_empty() {
            return Err(invalid("it is empty"));
        }
        if s == "ecr" {
            return Ok(Registry::EcrOfCaller);
        }
        let (host, rest) = match s.split_once('/') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        if !host.contains('.') && !host.contains(':') && host != "localhost" {
            return Err(invalid(
                "a registry is a host name (with a dot or a port), `ecr`, or `public.ecr.aws/ALIAS`",
            ));
        }
        if host.eq_ignore_ascii_case(ECR_PUBLIC_HOST) {
            return match rest {
                Some(alias) if !alias.is_empty() && !alias.contains('/') => {
                    Ok(Registry::EcrPublic {
                        alias: alias.to_string(),
                    })
                }
                _ => Err(invalid(
                    "ECR Public needs the registry alias: `public.ecr.aws/ALIAS`",
                )),
            };
        }
        if let Some((account, region)) = parse_ecr_host(host) {
            if rest.is_some() {
                return Err(invalid(
                    "a private ECR registry has no namespace; put the path in --repository",
                ));
            }
            return Ok(Registry::Ecr {
                account,
                region,
                host: host.to_ascii_lowercase(),
            });
        }
        Ok(Registry::Other {
            host: host.to_string(),
            namespace: rest.filter(|r| !r.is_empty()).map(str::to_string),
        })
    }

    /// The host images are pushed to, when known without asking AWS.
    pub fn host(&self) -> Option<&str> {
        match self {
            Registry::EcrOfCaller => None,
            Registry::Ecr { host, .. } => Some(host),
            Registry::EcrPublic { .. } => Some(ECR_PUBLIC_HOST),
            Registry::Other { host, .. } => Some(host),
        }
    }
}

/// `ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]` → (account, region).
pub fn parse_ecr_host(host: &str) -> Option<(String, String)> {
    let host = host.to_ascii_lowercase();
    let host = host.split(':').next()?;
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    let dkr = parts.next()?;
    let ecr = parts.next()?;
    let region = parts.next()?;
    if parts.next().is_some()
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
        || dkr != "dkr"
        || !(ecr == "ecr" || ecr == "ecr-fips")
        || region.is_empty()
    {
        return None;
    }
    Some((account.to_string(), region.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_the_contract() {
        assert_eq!(Registry::parse("ecr").unwrap(), Registry::EcrOfCaller);
        assert_eq!(
            Registry::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap(),
            Registry::Ecr {
                account: "123456789012".into(),
                region: "eu-west-1".into(),
                host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into()
            }
        );
        assert_eq!(
            Registry::parse("public.ecr.aws/gamepulse").unwrap(),
            Registry::EcrPublic {
                alias: "gamepulse".into()
            }
        );
        assert_eq!(
            Registry::parse("127.0.0.1:5000").unwrap(),
            Registry::Other {
                host: "127.0.0.1:5000".into(),
                namespace: None
            }
        );
        assert_eq!(
            Registry::parse("ghcr.io/acme/").unwrap(),
            Registry::Other {
                host: "ghcr.io".into(),
                namespace: Some("acme".into())
            }
        );
    }

    #[test]
    fn refusals_say_why() {
        for bad in [
            "",
            "public.ecr.aws",
            "myregistry",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/x",
        ] {
            let e = Registry::parse(bad).unwrap_err().to_string();
            assert!(e.contains("is not a registry"), "{bad}: {e}");
        }
    }

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            parse_ecr_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"),
            Some(("123456789012".into(), "us-gov-west-1".into()))
        );
        assert_eq!(
            parse_ecr_host("12345.dkr.ecr.us-east-1.amazonaws.com"),
            None
        );
        assert_eq!(parse_ecr_host("example.com"), None);
    }
}
