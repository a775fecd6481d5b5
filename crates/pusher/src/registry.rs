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
    /// Parses `REG` of `--registry REG`. Only what the distribution grammar allows gets
    /// through: the host is printed, logged in to and put into references, so a newline,
    /// credentials (`user:pass@`), `#`, `?` or a capital letter there is refused.
    pub fn parse(given: &str) -> Result<Registry, Error> {
        let invalid = |why: &str| Error::InvalidRegistry {
            given: shown(given),
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
        if s.contains('@') {
            return Err(invalid(
                "credentials do not belong in a registry address: log in with `docker login` (or the AWS credentials for ECR)",
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid(&format!("it holds the character {c:?}")));
        }
        if let Some(c) = s.chars().find(|c| matches!(c, '#' | '?')) {
            return Err(invalid(&format!(
                "`{c}` has no place in a registry address (HOST[:PORT][/NAMESPACE])"
            )));
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
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(&format!(
                "write the host in lower case (`{}`)",
                host.to_ascii_lowercase()
            )));
        }
        check_host(host).map_err(|why| invalid(&why))?;
        if let Some(rest) = rest.filter(|r| !r.is_empty()) {
            if !rest.split('/').all(is_path_component) {
                return Err(invalid(
                    "the namespace after the host must be lowercase path components (letters, digits, and `.`, `_`, `__` or `-` between them)",
                ));
            }
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

/// What a refused registry address is shown as: credentials cut off, control characters
/// escaped, so the message can neither leak a password nor forge a line of output.
fn shown(given: &str) -> String {
    let given = match given.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => given.to_string(),
    };
    given.escape_debug().to_string()
}

/// A registry host as the distribution grammar has it: dot-separated labels of letters, digits
/// and inner dashes, or a bracketed IPv6 address, with an optional port.
fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs its closing `]`".to_string())?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err("only a `:PORT` may follow an IPv6 address".into()),
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("`{port}` is not a port (1-65535)"));
        }
    }
    if let Some(name) = name {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !name.split('.').all(label_ok) {
            return Err(format!(
                "`{name}` is not a host name (letters, digits and inner `-`, separated by dots)"
            ));
        }
    }
    Ok(())
}

/// One path component of a repository, by the distribution grammar:
/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
pub fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
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
    fn hostile_addresses_are_refused_without_echoing_them() {
        let cases = [
            ("registry.example.com\n::add-mask::x", "the character"),
            ("reg istry.example.com", "the character"),
            (
                "user:s3cret@registry.example.com",
                "credentials do not belong",
            ),
            (
                "https://user:s3cret@registry.example.com/team",
                "credentials do not belong",
            ),
            ("registry.example.com#frag", "`#` has no place"),
            ("registry.example.com/x?y=1", "`?` has no place"),
            (
                "Registry.Example.com",
                "lower case (`registry.example.com`)",
            ),
            ("registry.example.com:0", "is not a port"),
            ("registry.example.com:99999", "is not a port"),
            ("registry..example.com", "is not a host name"),
            ("-registry.example.com", "is not a host name"),
            ("registry.example.com/Team", "namespace after the host"),
            ("registry.example.com/team..x", "namespace after the host"),
            ("[::1:5000", "closing `]`"),
        ];
        for (given, why) in cases {
            let e = Registry::parse(given).unwrap_err().to_string();
            assert!(e.contains(why), "{given:?}: {e}");
            assert!(!e.contains('\n'), "one line, the newline escaped: {e}");
            assert!(!e.contains("s3cret"), "no password in the message: {e}");
        }
        assert_eq!(
            Registry::parse("[::1]:5000").unwrap(),
            Registry::Other {
                host: "[::1]:5000".into(),
                namespace: None
            }
        );
    }

    #[test]
    fn path_components_follow_the_distribution_grammar() {
        for ok in [
            "a",
            "a1",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a.b_c__d-e",
        ] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", "A", "a.", ".a", "a..b", "a___b", "a._b", "a-", "-a", "a b", "a@b",
        ] {
            assert!(!is_path_component(bad), "{bad}");
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
