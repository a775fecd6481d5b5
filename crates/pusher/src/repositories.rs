//! ECR repositories: which of the targets' repositories exist, and creating the missing ones
//! (scan on push, tag mutability, encryption, lifecycle policy) when asked to. Registries other
//! than ECR create repositories on first push, so only ECR and ECR Public are checked.

use crate::aws_failure::{AwsCall, AwsError};
use crate::error::Fault;
use crate::Error;
use aws_config::{Region, SdkConfig};

/// How new repositories are made (`--create-repositories` and top-level `x-wharf`).
#[derive(Debug, Clone)]
pub struct CreateSettings {
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    /// `AES256` (default) or `KMS`.
    pub encryption: Option<String>,
    pub kms_key: Option<String>,
    /// The lifecycle policy document (JSON text).
    pub lifecycle_policy: Option<String>,
}

impl Default for CreateSettings {
    fn default() -> Self {
        CreateSettings {
            scan_on_push: true,
            immutable_tags: false,
            encryption: None,
            kms_key: None,
            lifecycle_policy: None,
        }
    }
}

/// What is known of an existing repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub name: String,
    pub mutability: TagMutability,
}

/// Whether a repository lets a tag be pointed at another image: ECR's four modes, the
/// `*_WITH_EXCLUSION` ones with their wildcard filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagMutability {
    Mutable,
    Immutable,
    /// Immutable, except tags matching one of the filters.
    ImmutableWithExclusion(Vec<String>),
    /// Mutable, except tags matching one of the filters.
    MutableWithExclusion(Vec<String>),
}

impl TagMutability {
    /// The rule that makes `tag` immutable here, or `None` when the tag may move.
    pub fn immutable_rule(&self, tag: &str) -> Option<String> {
        match self {
            TagMutability::Mutable => None,
            TagMutability::Immutable => Some("IMMUTABLE".into()),
            TagMutability::ImmutableWithExclusion(filters) => {
                (!filters.iter().any(|f| wildcard_matches(f, tag))).then(|| {
                    format!(
                        "IMMUTABLE_WITH_EXCLUSION (mutable only: {})",
                        filters.join(", ")
                    )
                })
            }
            TagMutability::MutableWithExclusion(filters) => filters
                .iter()
                .find(|f| wildcard_matches(f, tag))
                .map(|f| format!("MUTABLE_WITH_EXCLUSION (immutable: {f})")),
        }
    }

    fn of_ecr(
        mode: Option<&aws_sdk_ecr::types::ImageTagMutability>,
        filters: &[aws_sdk_ecr::types::ImageTagMutabilityExclusionFilter],
    ) -> TagMutability {
        use aws_sdk_ecr::types::ImageTagMutability as M;
        let filters = || filters.iter().map(|f| f.filter().to_string()).collect();
        match mode {
            Some(M::Immutable) => TagMutability::Immutable,
            Some(M::ImmutableWithExclusion) => TagMutability::ImmutableWithExclusion(filters()),
            Some(M::MutableWithExclusion) => TagMutability::MutableWithExclusion(filters()),
            _ => TagMutability::Mutable,
        }
    }
}

/// ECR's tag filters (filter type `WILDCARD`): `*` stands for any run of characters, every
/// other character for itself. Written here because ECR's rule is this one character, not a
/// glob language a crate would bring (no `?`, no classes, `/` not special).
fn wildcard_matches(filter: &str, tag: &str) -> bool {
    let parts: Vec<&str> = filter.split('*').collect();
    if parts.len() == 1 {
        return filter == tag;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !tag.starts_with(first) || tag.len() < first.len() + last.len() || !tag.ends_with(last) {
        return false;
    }
    let mut rest = &tag[first.len()..tag.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// A private ECR registry's repositories, in one account and region.
pub struct Ecr {
    client: aws_sdk_ecr::Client,
    registry_id: String,
    host: String,
    region: String,
}

impl Ecr {
    pub fn new(sdk: &SdkConfig, account: &str, region: &str, host: &str) -> Ecr {
        let conf = aws_sdk_ecr::config::Builder::from(sdk)
            .region(Region::new(region.to_string()))
            .build();
        Ecr {
            client: aws_sdk_ecr::Client::from_conf(conf),
            registry_id: account.to_string(),
            host: host.to_string(),
            region: region.to_string(),
        }
    }

    /// The repository, or `None` when it does not exist.
    pub async fn describe(&self, name: &str) -> Result<Option<RepositoryInfo>, Error> {
        let out = self
            .client
            .describe_repositories()
            .registry_id(&self.registry_id)
            .repository_names(name)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.repositories().first().map(|r| RepositoryInfo {
                name: name.to_string(),
                mutability: TagMutability::of_ecr(
                    r.image_tag_mutability(),
                    r.image_tag_mutability_exclusion_filters(),
                ),
            })),
            Err(e) => {
                let service_err = e.as_service_error();
                if service_err.is_some_and(|s| s.is_repository_not_found_exception()) {
                    return Ok(None);
                }
                Err(Error::Aws {
                    registry: self.host.clone(),
                    error: AwsError::from_sdk(
                        AwsCall::new("ecr:DescribeRepositories"),
                        Some(&self.region),
                        &e,
                    ),
                })
            }
        }
    }

    /// Creates the repository with `settings`.
    pub async fn create(
        &self,
        name: &str,
        settings: &CreateSettings,
    ) -> Result<RepositoryInfo, Error> {
        use aws_sdk_ecr::types::{
            EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
        };
        let mut call = self
            .client
            .create_repository()
            .registry_id(&self.registry_id)
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(settings.scan_on_push)
                    .build(),
            )
            .image_tag_mutability(if settings.immutable_tags {
                ImageTagMutability::Immutable
            } else {
                ImageTagMutability::Mutable
            });
        if let Some(kind) = &settings.encryption {
            let kind = match kind.to_ascii_uppercase().as_str() {
                "KMS" => EncryptionType::Kms,
                _ => EncryptionType::Aes256,
            };
            let mut enc = EncryptionConfiguration::builder().encryption_type(kind);
            if let Some(key) = &settings.kms_key {
                enc = enc.kms_key(key);
            }
            let enc = enc.build().map_err(|e| Error::Registry {
                registry: self.host.clone(),
                message: e.to_string(),
                fault: Fault::permanent(),
            })?;
            call = call.encryption_configuration(enc);
        }
        call.send().await.map_err(|e| Error::Aws {
            registry: self.host.clone(),
            error: AwsError::from_sdk(AwsCall::new("ecr:CreateRepository"), Some(&self.region), &e),
        })?;
        if let Some(policy) = &settings.lifecycle_policy {
            self.client
                .put_lifecycle_policy()
                .registry_id(&self.registry_id)
                .repository_name(name)
                .lifecycle_policy_text(policy)
                .send()
                .await
                .map_err(|e| Error::Aws {
                    registry: self.host.clone(),
                    error: AwsError::from_sdk(
                        AwsCall::new("ecr:PutLifecyclePolicy"),
                        Some(&self.region),
                        &e,
                    ),
                })?;
        }
        Ok(RepositoryInfo {
            name: name.to_string(),
            mutability: if settings.immutable_tags {
                TagMutability::Immutable
            } else {
                TagMutability::Mutable
            },
        })
    }

    /// Removes `tag` from the repository, leaving the image and its other tags (ECR's
    /// BatchDeleteImage by tag removes only that tag while others name the image). `Ok(false)`:
    /// ECR did not know the tag.
    pub async fn untag(&self, name: &str, tag: &str) -> Result<bool, Error> {
        let id = aws_sdk_ecr::types::ImageIdentifier::builder()
            .image_tag(tag)
            .build();
        let out = self
            .client
            .batch_delete_image()
            .registry_id(&self.registry_id)
            .repository_name(name)
            .image_ids(id)
            .send()
            .await
            .map_err(|e| Error::Aws {
                registry: self.host.clone(),
                error: AwsError::from_sdk(
                    AwsCall::new("ecr:BatchDeleteImage"),
                    Some(&self.region),
                    &e,
                ),
            })?;
        Ok(out.failures().is_empty() && !out.image_ids().is_empty())
    }
}

/// ECR Public repositories (the API lives in us-east-1).
pub struct EcrPublic {
    client: aws_sdk_ecrpublic::Client,
}

impl EcrPublic {
    pub fn new(sdk: &SdkConfig) -> EcrPublic {
        let conf = aws_sdk_ecrpublic::config::Builder::from(sdk)
            .region(Region::new("us-east-1"))
            .build();
        EcrPublic {
            client: aws_sdk_ecrpublic::Client::from_conf(conf),
        }
    }

    /// The repository `name` (without the alias), or `None`.
    pub async fn describe(&self, name: &str) -> Result<Option<RepositoryInfo>, Error> {
        match self
            .client
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
        {
            Ok(o) => Ok(o.repositories().first().map(|_| RepositoryInfo {
                name: name.to_string(),
                mutability: TagMutability::Mutable,
            })),
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception())
                {
                    return Ok(None);
                }
                Err(Error::Aws {
                    registry: crate::registry::ECR_PUBLIC_HOST.into(),
                    error: AwsError::from_sdk(
                        AwsCall::new("ecr-public:DescribeRepositories"),
                        Some("us-east-1"),
                        &e,
                    ),
                })
            }
        }
    }

    pub async fn create(&self, name: &str) -> Result<RepositoryInfo, Error> {
        self.client
            .create_repository()
            .repository_name(name)
            .send()
            .await
            .map_err(|e| Error::Aws {
                registry: crate::registry::ECR_PUBLIC_HOST.into(),
                error: AwsError::from_sdk(
                    AwsCall::new("ecr-public:CreateRepository"),
                    Some("us-east-1"),
                    &e,
                ),
            })?;
        Ok(RepositoryInfo {
            name: name.to_string(),
            mutability: TagMutability::Mutable,
        })
    }

    /// Removes `tag` from repository `name`, leaving the image and its other tags.
    pub async fn untag(&self, name: &str, tag: &str) -> Result<bool, Error> {
        let id = aws_sdk_ecrpublic::types::ImageIdentifier::builder()
            .image_tag(tag)
            .build();
        let out = self
            .client
            .batch_delete_image()
            .repository_name(name)
            .image_ids(id)
            .send()
            .await
            .map_err(|e| Error::Aws {
                registry: crate::registry::ECR_PUBLIC_HOST.into(),
                error: AwsError::from_sdk(
                    AwsCall::new("ecr-public:BatchDeleteImage"),
                    Some("us-east-1"),
                    &e,
                ),
            })?;
        Ok(out.failures().is_empty() && !out.image_ids().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_wildcards_match_as_ecr_does() {
        assert!(wildcard_matches("latest", "latest"));
        assert!(!wildcard_matches("latest", "latest2"));
        assert!(wildcard_matches("release-*", "release-1.2"));
        assert!(wildcard_matches("*-latest", "stage-latest"));
        assert!(wildcard_matches("a*b*c", "a-x-b-y-c"));
        assert!(!wildcard_matches("a*b*c", "a-x-c"));
        assert!(wildcard_matches("*", "anything"));
        assert!(!wildcard_matches("ab*ba", "aba"));
    }

    #[test]
    fn exclusion_modes_decide_per_tag() {
        let imm = TagMutability::ImmutableWithExclusion(vec!["latest".into(), "*-latest".into()]);
        assert_eq!(imm.immutable_rule("latest"), None);
        assert_eq!(imm.immutable_rule("stage-latest"), None);
        assert!(imm
            .immutable_rule("dev")
            .unwrap()
            .contains("IMMUTABLE_WITH_EXCLUSION"));
        let mutable = TagMutability::MutableWithExclusion(vec!["prod-*".into()]);
        assert_eq!(mutable.immutable_rule("latest"), None);
        assert!(mutable
            .immutable_rule("prod-latest")
            .unwrap()
            .contains("prod-*"));
        assert!(TagMutability::Immutable.immutable_rule("latest").is_some());
        assert_eq!(TagMutability::Mutable.immutable_rule("latest"), None);
    }
}
