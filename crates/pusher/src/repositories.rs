//! ECR repositories: which of the targets' repositories exist, and creating the missing ones
//! (scan on push, tag mutability, encryption, lifecycle policy) when asked to. Registries other
//! than ECR create repositories on first push, so only ECR and ECR Public are checked.

use crate::login::sdk_error_message;
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
    pub immutable_tags: bool,
}

/// A private ECR registry's repositories, in one account and region.
pub struct Ecr {
    client: aws_sdk_ecr::Client,
    registry_id: String,
    host: String,
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
                immutable_tags: matches!(
                    r.image_tag_mutability(),
                    Some(aws_sdk_ecr::types::ImageTagMutability::Immutable)
                ),
            })),
            Err(e) => {
                let service_err = e.as_service_error();
                if service_err.is_some_and(|s| s.is_repository_not_found_exception()) {
                    return Ok(None);
                }
                Err(Error::Registry {
                    registry: self.host.clone(),
                    message: format!(
                        "DescribeRepositories for `{name}`: {} (the caller needs ecr:DescribeRepositories)",
                        sdk_error_message(&e)
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
            })?;
            call = call.encryption_configuration(enc);
        }
        call.send().await.map_err(|e| Error::Registry {
            registry: self.host.clone(),
            message: format!(
                "CreateRepository `{name}`: {} (the caller needs ecr:CreateRepository)",
                sdk_error_message(&e)
            ),
        })?;
        if let Some(policy) = &settings.lifecycle_policy {
            self.client
                .put_lifecycle_policy()
                .registry_id(&self.registry_id)
                .repository_name(name)
                .lifecycle_policy_text(policy)
                .send()
                .await
                .map_err(|e| Error::Registry {
                    registry: self.host.clone(),
                    message: format!("PutLifecyclePolicy on `{name}`: {} (the caller needs ecr:PutLifecyclePolicy)", sdk_error_message(&e)),
                })?;
        }
        Ok(RepositoryInfo {
            name: name.to_string(),
            immutable_tags: settings.immutable_tags,
        })
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
                immutable_tags: false,
            })),
            Err(e) => {
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception())
                {
                    return Ok(None);
                }
                Err(Error::Registry {
                    registry: crate::registry::ECR_PUBLIC_HOST.into(),
                    message: format!("DescribeRepositories for `{name}`: {} (the caller needs ecr-public:DescribeRepositories)", sdk_error_message(&e)),
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
            .map_err(|e| Error::Registry {
                registry: crate::registry::ECR_PUBLIC_HOST.into(),
                message: format!(
                    "CreateRepository `{name}`: {} (the caller needs ecr-public:CreateRepository)",
                    sdk_error_message(&e)
                ),
            })?;
        Ok(RepositoryInfo {
            name: name.to_string(),
            immutable_tags: false,
        })
    }
}
