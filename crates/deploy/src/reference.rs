//! Image references as deploy files write them, and a release's image pinned by digest.

/// An image reference split into what wharf compares: the repository (with its registry
/// host), the tag and the digest. Names without a registry are Docker Hub's, normalized as
/// Docker normalizes them (`redis` is `docker.io/library/redis`), so that they never equal a
/// released repository by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (`HOST[:PORT]`), lowercase.
    pub host: String,
    /// The repository path within the registry.
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:…`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Splits `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`. Lenient: every string gives a reference, and
    /// one that is not a valid image name simply names no released repository.
    pub fn parse(reference: &str) -> ImageRef {
        let reference = reference.trim();
        let (name, digest) = match reference.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (reference, None),
        };
        let (rest, tag) = match name.rfind(':') {
            Some(i) if !name[i + 1..].contains('/') => {
                (&name[..i], Some(name[i + 1..].to_string()))
            }
            _ => (name, None),
        };
        let (host, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_ascii_lowercase(), path.to_string())
            }
            _ => ("docker.io".to_string(), rest.to_string()),
        };
        let host = match host.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => host,
        };
        let path = if host == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        ImageRef {
            host,
            path,
            tag,
            digest,
        }
    }

    /// `HOST/PATH`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.host, self.path)
    }

    /// `HOST/PATH:TAG`, when there is a tag.
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repository()))
    }
}

/// A released image pinned by digest: what a deploy file should name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    /// The compose service.
    pub service: String,
    /// `HOST/REPOSITORY`.
    pub repository: String,
    /// The identity tag of the release (`<git sha>`, or what the tag templates made of it).
    pub tag: String,
    /// The digest the registry serves for the tag: a multi-platform image's index.
    pub digest: String,
    /// For a multi-platform image, the digests of its platforms' images: a running task may
    /// report the image of its own platform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

impl Pin {
    /// `HOST/REPOSITORY:TAG@DIGEST`: the tag says which release it is, the digest what runs.
    pub fn reference(&self) -> String {
        format!("{}:{}@{}", self.repository, self.tag, self.digest)
    }

    /// Whether `image` names this pin's repository.
    pub fn same_repository(&self, image: &ImageRef) -> bool {
        ImageRef::parse(&self.repository).repository() == image.repository()
    }

    /// Whether a digest a running task reports is this release's image (the index, or the
    /// image of one of its platforms).
    pub fn is_release_digest(&self, digest: &str) -> bool {
        digest == self.digest || self.platforms.iter().any(|p| p == digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_and_normalize_like_docker() {
        let r =
            ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api:abc@sha256:00");
        assert_eq!(r.host, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(r.path, "shop/api");
        assert_eq!(r.tag.as_deref(), Some("abc"));
        assert_eq!(r.digest.as_deref(), Some("sha256:00"));
        let r = ImageRef::parse("localhost:5000/a/b");
        assert_eq!(
            (r.host.as_str(), r.path.as_str(), r.tag),
            ("localhost:5000", "a/b", None)
        );
        assert_eq!(
            ImageRef::parse("redis:7").repository(),
            "docker.io/library/redis"
        );
        assert_eq!(
            ImageRef::parse("index.docker.io/org/app").repository(),
            "docker.io/org/app"
        );
        assert_eq!(
            ImageRef::parse("Registry.Example.com/app@sha256:11").tagged(),
            None
        );
    }

    #[test]
    fn a_pin_names_tag_and_digest_and_knows_its_platforms() {
        let pin = Pin {
            service: "api".into(),
            repository: "r.example.com/shop/api".into(),
            tag: "abc".into(),
            digest: "sha256:index".into(),
            platforms: vec!["sha256:amd64".into()],
        };
        assert_eq!(pin.reference(), "r.example.com/shop/api:abc@sha256:index");
        assert!(pin.same_repository(&ImageRef::parse("R.example.com/shop/api:latest")));
        assert!(!pin.same_repository(&ImageRef::parse("r.example.com/shop/api2:abc")));
        assert!(pin.is_release_digest("sha256:amd64"));
        assert!(!pin.is_release_digest("sha256:other"));
    }
}
