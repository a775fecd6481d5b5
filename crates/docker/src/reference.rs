//! Image references as docker reads them: distribution's `reference.ParseNormalizedNamed`.
//!
//! `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`, where the first component is a registry host only
//! when it has a `.` or a `:`, is `localhost`, or has an uppercase letter; otherwise the image
//! is on Docker Hub (`docker.io`, also written `index.docker.io`), where a one-component path
//! is an official image under `library/`. A name with neither tag nor digest means the tag
//! `latest`. The grammar is distribution's (`reference/regexp.go`) and the digest checks are
//! oci-spec's (the parser oci-client uses); the registry split is docker's own, which also
//! takes an uppercase first component as a host.
//!
//! A parsed reference keeps how it was written, because wharf's own names follow the user's
//! words (`image: api` pushed to another registry is the repository `api`, not
//! `library/api`), and gives docker's normalized and familiar forms for comparing names as
//! the daemon and BuildKit compare them.

use oci_spec::distribution::{ParseError, Reference as OciReference};
use std::sync::OnceLock;

/// distribution's reference grammar, anchored, capturing the name, tag and digest. oci-spec's
/// parser holds the same grammar, but with Rust's Unicode `\w` and `[[:xdigit:]]`: they make
/// the expression large enough that building it costs some 35 ms at every start of wharf, and
/// `\w` lets a tag such as `v1-é` through, which docker refuses (Go's `\w` is ASCII). The
/// classes are written out in ASCII here, as Go reads them.
const GRAMMAR: &str = concat!(
    r"^(",
    // domain: components of letters, digits and inner hyphens, joined by dots; a port
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])",
    r"(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?/)?",
    // path: lowercase components with `.`, `_`, `__` or hyphens between alphanumerics
    r"[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?",
    r"(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)",
    r"(?::([0-9A-Za-z_][0-9A-Za-z_.-]{0,127}))?",
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}))?$",
);

fn grammar() -> &'static regex::Regex {
    static GRAMMAR_RE: OnceLock<regex::Regex> = OnceLock::new();
    GRAMMAR_RE.get_or_init(|| regex::Regex::new(GRAMMAR).expect("the reference grammar compiles"))
}

/// The digest of a normalized reference (`registry/repository[:tag][@digest]`), checked as
/// oci-spec checks it: a supported algorithm with hex of its length.
fn check_grammar(reference: &str) -> Result<Option<String>, ParseError> {
    if reference.is_empty() {
        return Err(ParseError::NameEmpty);
    }
    let captures = grammar()
        .captures(reference)
        .ok_or(ParseError::ReferenceInvalidFormat)?;
    let Some(digest) = captures.get(3).map(|m| m.as_str()) else {
        return Ok(None);
    };
    let (hex, length) = match digest.split_once(':') {
        Some(("sha256", hex)) => (hex, 64),
        Some(("sha384", hex)) => (hex, 96),
        Some(("sha512", hex)) => (hex, 128),
        Some(_) => return Err(ParseError::DigestUnsupported),
        None => return Err(ParseError::DigestInvalidFormat),
    };
    if hex.len() != length {
        return Err(ParseError::DigestInvalidLength);
    }
    Ok(Some(digest.to_string()))
}

/// Docker Hub's registry name in normalized references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's older name, which normalizes to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Where official images live on Docker Hub.
const OFFICIAL_REPOSITORY: &str = "library";
/// The tag a reference without tag or digest names.
pub const DEFAULT_TAG: &str = "latest";
/// distribution's `NameTotalLengthMax`, for the normalized `registry/repository`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a text is not an image reference.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Not `[registry/]name[:tag][@digest]`, or a digest of the wrong algorithm or length.
    #[error("{0}")]
    Grammar(#[from] ParseError),
    /// The repository has an uppercase letter.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// 64 hexadecimal digits alone: an image ID, which docker refuses as a name.
    #[error("a repository name cannot be 64 hexadecimal characters (an image ID)")]
    ImageId,
    /// The normalized `registry/repository` is too long.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// `user:password@host/…`: a URL's credentials where an image name belongs. The error
    /// never holds the text, since it holds a password.
    #[error("it holds credentials before `@` (`***@{host}`): a registry's credentials go in `docker login` or a credential helper, never in an image name")]
    Credentials { host: String },
}

/// An image reference, as written and as docker normalizes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// The registry as written; `None` when the name has none (Docker Hub).
    written_registry: Option<String>,
    /// The path as written: without registry, tag or digest, and no `library/` added.
    written_path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl std::str::FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

impl ImageReference {
    /// Reads `reference` as `ParseNormalizedNamed` does.
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        if let Some(host) = credentials_host(reference) {
            return Err(ReferenceError::Credentials {
                host: host.to_string(),
            });
        }
        if reference.len() == 64
            && reference
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ReferenceError::ImageId);
        }
        let (written_registry, remainder) = split_registry(reference);
        let registry = normalize_registry(written_registry);
        // The remainder with `library/` added, as docker hands it to the grammar.
        let full_remainder = if registry == DOCKER_HUB && !remainder.contains('/') {
            format!("{OFFICIAL_REPOSITORY}/{remainder}")
        } else {
            remainder.to_string()
        };
        let remote_name = full_remainder
            .split_once(':')
            .map_or(full_remainder.as_str(), |(n, _)| n);
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::Uppercase);
        }
        let digest = check_grammar(&format!("{registry}/{full_remainder}"))?;
        // The grammar holds, so the tag is what follows the last `:` after the last `/`.
        let name_and_tag = remainder.split_once('@').map_or(remainder, |(n, _)| n);
        let (written_path, tag) = match name_and_tag.rsplit_once(':') {
            Some((path, tag)) => (path, Some(tag.to_string())),
            None => (name_and_tag, None),
        };
        let added = if full_remainder.len() > remainder.len() {
            OFFICIAL_REPOSITORY.len() + 1
        } else {
            0
        };
        if registry.len() + 1 + added + written_path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(ImageReference {
            written_registry: written_registry.map(str::to_string),
            written_path: written_path.to_string(),
            tag,
            digest,
        })
    }

    /// The registry host as written (`index.docker.io` stays so); `None` for a name without
    /// one.
    pub fn written_registry(&self) -> Option<&str> {
        self.written_registry.as_deref()
    }

    /// The path as written, without registry, tag and digest (`library/` is not added).
    pub fn written_path(&self) -> &str {
        &self.written_path
    }

    /// The name as written, without tag and digest: what `docker tag` is given as repository.
    pub fn written_name(&self) -> String {
        match &self.written_registry {
            Some(r) => format!("{r}/{}", self.written_path),
            None => self.written_path.clone(),
        }
    }

    /// The registry: the host written, or [`DOCKER_HUB`].
    pub fn registry(&self) -> &str {
        normalize_registry(self.written_registry.as_deref())
    }

    /// The repository in the registry: `library/` added to Docker Hub's one-component names.
    pub fn repository(&self) -> String {
        if self.registry() == DOCKER_HUB && !self.written_path.contains('/') {
            format!("{OFFICIAL_REPOSITORY}/{}", self.written_path)
        } else {
            self.written_path.clone()
        }
    }

    /// The tag written, if any (see [`ImageReference::tag_or_default`]).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag written, or [`DEFAULT_TAG`] for a name with neither tag nor digest.
    pub fn tag_or_default(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// The digest (`algorithm:hex`), if written.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`, normalized (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The normalized reference with the default tag made explicit, as the daemon names an
    /// image (`TagNameOnly`): `docker.io/library/busybox:latest`. Two references name the same
    /// image tag exactly when these are equal.
    pub fn normalized(&self) -> String {
        with_tag_and_digest(self.name(), self.tag_or_default(), self.digest())
    }

    /// The name as docker prints it (`FamiliarName`): Docker Hub's `docker.io/` and an
    /// official image's `library/` left out.
    pub fn familiar_name(&self) -> String {
        if self.registry() != DOCKER_HUB {
            return self.name();
        }
        let repository = self.repository();
        match repository.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => repository,
        }
    }

    /// The reference as docker prints it (`FamiliarString`): the familiar name with the tag
    /// and digest written (no default tag added).
    pub fn familiar(&self) -> String {
        with_tag_and_digest(self.familiar_name(), self.tag(), self.digest())
    }

    /// The same reference for the registry API client (oci-client).
    pub fn to_oci(&self) -> OciReference {
        let (registry, repository) = (self.registry().to_string(), self.repository());
        match (self.tag_or_default(), &self.digest) {
            (Some(t), Some(d)) => {
                OciReference::with_tag_and_digest(registry, repository, t.to_string(), d.clone())
            }
            (None, Some(d)) => OciReference::with_digest(registry, repository, d.clone()),
            (t, None) => {
                OciReference::with_tag(registry, repository, t.unwrap_or(DEFAULT_TAG).to_string())
            }
        }
    }
}

fn with_tag_and_digest(name: String, tag: Option<&str>, digest: Option<&str>) -> String {
    let mut out = name;
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}

/// docker's `splitDockerDomain`: the registry written, if the first component is one, and the
/// rest.
fn split_registry(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first), rest)
        }
        _ => (None, reference),
    }
}

fn normalize_registry(written: Option<&str>) -> &str {
    match written {
        None | Some(LEGACY_DOCKER_HUB) => DOCKER_HUB,
        Some(r) => r,
    }
}

/// The host of `user[:password]@host[/path]`, where `@` cannot start a digest: what follows it
/// has a `/`, or no `:` (a digest is `algorithm:hex`).
fn credentials_host(reference: &str) -> Option<&str> {
    let (before, after) = reference.split_once('@')?;
    if before.contains('/') || (after.contains(':') && !after.contains('/')) {
        return None;
    }
    Some(after.split('/').next().unwrap_or(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn parse(s: &str) -> ImageReference {
        ImageReference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_names_are_normalized() {
        for (written, normalized, familiar) in [
            ("busybox", "docker.io/library/busybox:latest", "busybox"),
            ("busybox:1", "docker.io/library/busybox:1", "busybox:1"),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox",
            ),
            (
                "index.docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("me/app:v2", "docker.io/me/app:v2", "me/app:v2"),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b",
            ),
            (
                "test.com:tag",
                "docker.io/library/test.com:tag",
                "test.com:tag",
            ),
            ("my.stage", "docker.io/library/my.stage:latest", "my.stage"),
        ] {
            let r = parse(written);
            assert_eq!(r.normalized(), normalized, "{written}");
            assert_eq!(r.familiar(), familiar, "{written}");
            assert_eq!(r.registry(), DOCKER_HUB, "{written}");
        }
    }

    #[test]
    fn registries_ports_and_digests() {
        let r = parse("localhost:5000/a/b");
        assert_eq!(
            (r.registry(), r.repository().as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!((r.tag(), r.tag_or_default()), (None, Some("latest")));
        assert_eq!(r.familiar(), "localhost:5000/a/b");

        let r = parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api:1.0@{DIGEST}"
        ));
        assert_eq!(
            r.written_registry(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com")
        );
        assert_eq!(
            (r.written_path(), r.tag(), r.digest()),
            ("shop/api", Some("1.0"), Some(DIGEST))
        );

        let r = parse(&format!("busybox@{DIGEST}"));
        assert_eq!(r.tag_or_default(), None);
        assert_eq!(
            r.normalized(),
            format!("docker.io/library/busybox@{DIGEST}")
        );

        // An uppercase first component is a registry host, as docker reads it.
        let r = parse("Registry/app");
        assert_eq!((r.registry(), r.repository().as_str()), ("Registry", "app"));
        assert_eq!(parse("localhost/app").registry(), "localhost");
    }

    #[test]
    fn written_forms_stay_as_written() {
        for (written, registry, path, tag, name) in [
            ("gateway:dev", None, "gateway", Some("dev"), "gateway"),
            (
                "localhost:5000/a/b",
                Some("localhost:5000"),
                "a/b",
                None,
                "localhost:5000/a/b",
            ),
            (
                "gamepulse/backend",
                None,
                "gamepulse/backend",
                None,
                "gamepulse/backend",
            ),
            (
                "index.docker.io/x:1",
                Some("index.docker.io"),
                "x",
                Some("1"),
                "index.docker.io/x",
            ),
        ] {
            let r = parse(written);
            assert_eq!(r.written_registry(), registry, "{written}");
            assert_eq!(r.written_path(), path, "{written}");
            assert_eq!(r.tag(), tag, "{written}");
            assert_eq!(r.written_name(), name, "{written}");
        }
    }

    #[test]
    fn what_docker_refuses() {
        let err = |s: &str| ImageReference::parse(s).unwrap_err();
        assert_eq!(err("Base"), ReferenceError::Uppercase);
        for with_password in [
            "user:s3cret@registry.example.com/team/api",
            "user:s3cret@localhost:5000/api:1",
            "user:s3cret@registry.example.com",
        ] {
            let e = err(with_password);
            assert!(matches!(e, ReferenceError::Credentials { .. }), "{e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        assert!(ImageReference::parse(
            "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        )
        .is_ok());
        assert_eq!(err("me/Base:1"), ReferenceError::Uppercase);
        assert_eq!(err(&"a".repeat(64)), ReferenceError::ImageId);
        assert_eq!(
            err(&format!("{}/x", "a".repeat(250))),
            ReferenceError::NameTooLong
        );
        for bad in [
            "",
            "a b",
            "x:",
            ":tag",
            "x@sha256:abc",
            "x@md5:ffffffffffffffffffffffffffffffff",
            "a//b",
            "-x",
            "x:-bad",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_registry_client_gets_the_same_reference() {
        let r = parse("127.0.0.1:5000/shop/api:abc").to_oci();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "shop/api", Some("abc"))
        );
        let r = parse("busybox").to_oci();
        assert_eq!(r.whole(), "docker.io/library/busybox:latest");
        assert_eq!(r.resolve_registry(), "index.docker.io");
        let r = parse(&format!("h.io/x@{DIGEST}")).to_oci();
        assert_eq!((r.tag(), r.digest()), (None, Some(DIGEST)));
    }

    /// The grammar accepts and refuses what oci-spec's parser does, on ASCII, with the same
    /// digest; only a tag with a non-ASCII letter differs, which docker refuses too.
    #[test]
    fn the_grammar_is_oci_specs_in_ascii() {
        let sha384 = format!("sha384:{}", "a".repeat(96));
        let sha512 = format!("sha512:{}", "b".repeat(128));
        let cases = [
            "docker.io/library/busybox:latest".to_string(),
            "docker.io/library/busybox".to_string(),
            "127.0.0.1:5000/shop/api:abc".to_string(),
            "localhost:5000/a/b/c:v1.2-rc_3".to_string(),
            "h.io/x__y.z--w:T_AG".to_string(),
            format!("h.io/x@{DIGEST}"),
            format!("h.io/x:t@{DIGEST}"),
            format!("h.io/x@{sha384}"),
            format!("h.io/x@{sha512}"),
            format!("h.io/x:{}", "t".repeat(128)),
            format!("h.io/x:{}", "t".repeat(129)),
            "h.io/x@sha256:abc".to_string(),
            format!("h.io/x@sha256:{}", "f".repeat(63)),
            format!("h.io/x@md5:{}", "f".repeat(32)),
            "h.io/x@sha256".to_string(),
            "h.io/X".to_string(),
            "h.io/x:".to_string(),
            "h.io/x:.tag".to_string(),
            "h.io/-x".to_string(),
            "h.io/x-".to_string(),
            "h.io/x_.y".to_string(),
            "h.io//x".to_string(),
            "-h.io/x".to_string(),
            "h-.io/x".to_string(),
            "h.io:port/x".to_string(),
            "a b".to_string(),
            String::new(),
        ];
        for case in &cases {
            let ours = check_grammar(case);
            let theirs =
                OciReference::try_from(case.as_str()).map(|r| r.digest().map(str::to_string));
            assert_eq!(ours, theirs, "{case:?}");
        }
        assert!(OciReference::try_from("h.io/x:v1-é").is_ok());
        assert_eq!(
            check_grammar("h.io/x:v1-é"),
            Err(ParseError::ReferenceInvalidFormat)
        );
    }
}
