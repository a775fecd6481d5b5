//! An unchanged base brought into the daemon, so that a service built `FROM` it can be built
//! without building the base again.
//!
//! The registry holds the base's image (the skip decision found it under its inputs tag and
//! the trust check vouched for it), and that image is what the release tags. A rebuilt base
//! would be another image (another creation time at least): released under the new tags, it
//! would give an unchanged service a new digest. So the base is taken as it is: from the
//! daemon when it holds an image of the same inputs (its inputs label) under the registry's
//! digest or a name the dependents use, else pulled from the registry by digest with the
//! release's login; then tagged with the names the dependents' Dockerfiles use.

use crate::api::RawManifest;
use crate::login::Login;
use bollard::query_parameters::{CreateImageOptions, TagImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use wharf_docker::reference::{ImageReference, DEFAULT_TAG};

/// Where the base image came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalBase {
    /// The daemon held an image of the same inputs (`id`).
    Daemon { id: String },
    /// Pulled from the registry by digest.
    Pulled { reference: String },
}

/// Why the base could not be brought into the daemon (the caller then builds it).
#[derive(Debug, thiserror::Error)]
pub enum LocalBaseError {
    #[error("pulling {reference} failed: {message}")]
    Pull { reference: String, message: String },
    #[error("tagging {image} as {name} failed: {message}")]
    Tag {
        image: String,
        name: String,
        message: String,
    },
}

/// What to bring into the daemon.
#[derive(Debug, Clone, Copy)]
pub struct BaseImage<'a> {
    /// `HOST/REPOSITORY` of the release's image.
    pub repository: &'a str,
    /// The manifest the registry holds for the base's inputs.
    pub manifest: &'a RawManifest,
    /// The image label carrying the input digest, and the digest.
    pub inputs_label: &'a str,
    pub inputs: &'a str,
    /// The local names the dependents use (the compose image name, `build.tags`).
    pub names: &'a [String],
}

/// Makes `base` present in the daemon under each of its names.
pub async fn bring_into_daemon(
    docker: &Docker,
    base: BaseImage<'_>,
    login: Option<&Login>,
) -> Result<LocalBase, LocalBaseError> {
    let reference = format!("{}@{}", base.repository, base.manifest.digest);
    let names = std::iter::once(reference.clone()).chain(base.names.iter().cloned());
    let (image, origin) = match held(docker, names, base.inputs_label, base.inputs).await {
        Some(id) => (id.clone(), LocalBase::Daemon { id }),
        None => {
            pull(docker, &reference, login).await?;
            (reference.clone(), LocalBase::Pulled { reference })
        }
    };
    for name in base.names {
        tag(docker, &image, name).await?;
    }
    Ok(origin)
}

/// The ID of an image the daemon holds with `label=value` under one of `names`, if any.
///
/// Asked name by name rather than with the list endpoint's `label` filter: that filter reads
/// the configuration of every image the daemon holds (seconds on a daemon of a few thousand
/// images, as a laptop's or a long-lived runner's often is). An image of the same inputs held
/// under none of these names is pulled instead, which moves no layer the daemon already has.
async fn held(
    docker: &Docker,
    names: impl IntoIterator<Item = String>,
    label: &str,
    value: &str,
) -> Option<String> {
    for name in names {
        let Ok(image) = docker.inspect_image(&name).await else {
            continue;
        };
        let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
        if labels.get(label).map(String::as_str) == Some(value) {
            if let Some(id) = image.id {
                return Some(id);
            }
        }
    }
    None
}

async fn pull(
    docker: &Docker,
    reference: &str,
    login: Option<&Login>,
) -> Result<(), LocalBaseError> {
    let failed = |message: String| LocalBaseError::Pull {
        reference: reference.to_string(),
        message,
    };
    let options = CreateImageOptions {
        from_image: Some(reference.to_string()),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, login.map(Login::docker_credentials));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| failed(e.to_string()))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(failed(e));
        }
    }
    Ok(())
}

async fn tag(docker: &Docker, image: &str, name: &str) -> Result<(), LocalBaseError> {
    let failed = |message: String| LocalBaseError::Tag {
        image: image.to_string(),
        name: name.to_string(),
        message,
    };
    let reference = ImageReference::parse(name).map_err(|e| failed(e.to_string()))?;
    let options = TagImageOptions {
        repo: Some(reference.written_name()),
        tag: Some(reference.tag().unwrap_or(DEFAULT_TAG).to_string()),
    };
    docker
        .tag_image(image, Some(options))
        .await
        .map_err(|e| failed(e.to_string()))
}
