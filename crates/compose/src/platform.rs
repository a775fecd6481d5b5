//! A platform an image is built for (`os/architecture[/variant]`), parsed and normalized the
//! way containerd's `platforms.Normalize` does, so that two spellings of one platform
//! (`linux/arm64/v8` and `linux/arm64`, `linux/x86_64` and `linux/amd64`, `linux/arm` and
//! `linux/arm/v7`) are one value everywhere: in builds, input digests, tags and indexes.

use std::fmt;

/// One platform, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Why a platform string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a platform: write os/architecture[/variant], e.g. linux/amd64, linux/arm64, linux/arm/v7")]
pub struct PlatformParseError {
    pub given: String,
}

impl Platform {
    /// Parses `os/architecture[/variant]` and normalizes it.
    pub fn parse(s: &str) -> Result<Platform, PlatformParseError> {
        let err = || PlatformParseError {
            given: s.to_string(),
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(err());
        }
        let os = match parts[0].to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let (architecture, variant) = normalize_arch(
            &parts[1].to_ascii_lowercase(),
            parts.get(2).map(|v| v.to_ascii_lowercase()),
        );
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// What a platform identity tag appends to an identity tag: `linux-arm64`, `linux-arm-v7`.
    pub fn tag_suffix(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}-{}-{v}", self.os, self.architecture),
            None => format!("{}-{}", self.os, self.architecture),
        }
    }

    /// The platform identity tag of `identity_tag`: `<tag>-<os>-<arch>[-<variant>]`.
    pub fn identity_tag(&self, identity_tag: &str) -> String {
        format!("{identity_tag}-{}", self.tag_suffix())
    }

    /// The `uname -m` a Linux kernel reports for this architecture, where it is fixed: what a
    /// binfmt handler is registered for.
    pub fn machine(&self) -> Option<&'static str> {
        Some(
            match (self.architecture.as_str(), self.variant.as_deref()) {
                ("amd64", _) => "x86_64",
                ("arm64", _) => "aarch64",
                ("arm", _) => "arm",
                ("386", _) => "i386",
                ("ppc64le", _) => "ppc64le",
                ("s390x", _) => "s390x",
                ("riscv64", _) => "riscv64",
                ("mips64le", _) => "mips64el",
                _ => return None,
            },
        )
    }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    match arch {
        "i386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "8" && v != "v8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") => "v7".to_string(),
                Some("5") | Some("6") | Some("8") => format!("v{}", variant.unwrap_or_default()),
                Some(other) => other.to_string(),
            };
            ("arm".into(), Some(v))
        }
        other => (other.to_string(), variant),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}/{}/{v}", self.os, self.architecture),
            None => write!(f, "{}/{}", self.os, self.architecture),
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = PlatformParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses a comma-separated list (`--platform`, `WHARF_PLATFORMS`), dropping repeats.
pub fn parse_list(list: &str) -> Result<Vec<Platform>, PlatformParseError> {
    let mut out: Vec<Platform> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = Platform::parse(item)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Platform::parse(s).unwrap().to_string()
    }

    #[test]
    fn spellings_of_one_platform_are_one_value() {
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/amd64/v1"), "linux/amd64");
        assert_eq!(p("linux/amd64/v3"), "linux/amd64/v3");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/arm/7"), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("Linux/ARM64"), "linux/arm64");
        assert_eq!(p("linux/s390x"), "linux/s390x");
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_identity_tags() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(arm64.identity_tag("3f2a9c1"), "3f2a9c1-linux-arm64");
        let v7 = Platform::parse("linux/arm").unwrap();
        assert_eq!(v7.identity_tag("3f2a9c1"), "3f2a9c1-linux-arm-v7");
        assert_eq!(
            parse_list("linux/amd64, linux/x86_64,linux/arm64").unwrap(),
            [
                Platform::parse("linux/amd64").unwrap(),
                Platform::parse("linux/arm64").unwrap()
            ]
        );
        assert!(parse_list("linux/amd64,arm64").is_err());
    }
}
