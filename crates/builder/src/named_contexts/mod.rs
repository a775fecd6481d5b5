//! Named build contexts (`build.additional_contexts`) through the daemon's `/build` endpoint.
//!
//! The endpoint has no parameter for named contexts, and older Dockerfile frontends (Docker
//! 20.10's built-in one) do not know them. So wharf resolves them itself, before the build:
//! every named context becomes an image reference the daemon knows, and the Dockerfile the
//! daemon gets names those references where the user's names the contexts
//! ([`rewrite`], exact to the byte elsewhere).
//!
//! - `docker-image://REF` becomes `REF`.
//! - `service:NAME` becomes that service's image, which is built first.
//! - A folder becomes a helper image, `FROM scratch` + `COPY . /` of the folder, built with
//!   BuildKit through wharf's own session, so that the folder's `.dockerignore` applies as it
//!   does to a BuildKit named context (and only that file: a named context has no
//!   `<Dockerfile>.dockerignore`). Its files keep their paths, types, modes, sizes and link
//!   targets, owned by root as the session sends them; `FROM` it gets the configuration of
//!   the empty image (`PATH` only), as `FROM` a folder context does. Helpers are built with
//!   BuildKit for classic builds too: named contexts are BuildKit's, and so are their rules.
//! - URLs (git, https) and `oci-layout://` are refused: the endpoint fetches a remote source
//!   only as the main context, so wharf cannot turn one into an image before the build.
//!
//! Helper images are named `wharf-context/<project>-<hash>:<digest>`, where the digest covers
//! the folder's content as the helper build reads it (so the rewritten Dockerfile, and with it
//! the service's input digest, changes with that content): folders of the same content share
//! one image, whichever services and names use them. They are made one at a time and removed
//! when the run's builds have ended, whatever their outcome — not while another build may
//! still read one: Docker 26 with the containerd image store was seen to lose the content of
//! a helper that a running build used when another image of the same content was removed
//! meanwhile (the build then looked for it in a registry). Nothing is lost for the next
//! build: the helper's build is in BuildKit's cache, and rebuilding it from there gives the
//! same image id, so the service's own cached steps still apply. A helper left by an
//! interrupted run is used as it is (same name, same content) and removed by the next run of
//! that project.

pub mod rewrite;
pub mod words;

use crate::build::{BuildError, BuildRequest};
use crate::builder_kind::BuilderKind;
use crate::context::{Context as LocalContext, ContextError};
use bollard::Docker;
use std::path::{Path, PathBuf};
use wharf_compose::Dockerfile;

/// Where a named context's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedSource {
    /// A local folder (absolute, as the compose model resolves it).
    Folder(PathBuf),
    /// `docker-image://REF`.
    Image(String),
    /// `service:NAME`.
    Service(String),
}

/// What an `additional_contexts` value is, or why wharf cannot use it.
pub fn classify(value: &str) -> Result<NamedSource, String> {
    if let Some(service) = value.strip_prefix("service:") {
        return Ok(NamedSource::Service(service.to_string()));
    }
    if let Some(reference) = value.strip_prefix("docker-image://") {
        return match words::context_key(reference) {
            Some(_) => Ok(NamedSource::Image(reference.to_string())),
            None if reference == "scratch" => Ok(NamedSource::Image(reference.to_string())),
            None => Err(format!(
                "`{reference}` is not a valid image reference (lowercase `[registry/]name[:tag][@digest]`)"
            )),
        };
    }
    if value.starts_with("oci-layout://") {
        return Err("`oci-layout://` contexts are read from a local OCI layout by the BuildKit client, which the daemon's build endpoint cannot be given; load the image into the daemon (`docker load`) and use `docker-image://` instead".into());
    }
    if value.contains("://") || value.starts_with("git@") {
        return Err(format!(
            "remote named contexts ({value}) are not supported: the daemon's build endpoint fetches a remote source only as the main build context, so wharf cannot turn this one into an image before the build; clone or download it into a folder and name the folder instead"
        ));
    }
    Ok(NamedSource::Folder(PathBuf::from(value)))
}

/// The repository of helper images.
pub const HELPER_REPOSITORY: &str = "wharf-context";

/// The Dockerfile of a helper image: the folder's files at the image's root.
pub const HELPER_DOCKERFILE: &str = "FROM scratch\nCOPY . /\n";

/// Held while a helper is made: helpers are made one at a time.
static MAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A folder context, to be turned into an image before its service's build.
#[derive(Debug, Clone)]
pub struct Helper {
    /// The context's name.
    pub name: String,
    /// `wharf-context/…`, the same for every helper of this project.
    pub repository: String,
    /// `repository:digest`: what the Dockerfile names.
    pub reference: String,
    pub context: LocalContext,
    pub request: BuildRequest,
}

impl Helper {
    /// Prepares the helper of folder `dir`, named `name` in a service of `project`, for
    /// images of `platform`: reads the folder (through its `.dockerignore`) for its digest.
    pub fn prepare(
        project: &str,
        name: &str,
        dir: &Path,
        platform: Option<&str>,
    ) -> Result<Helper, ContextError> {
        let dockerfile = Dockerfile::Inline(HELPER_DOCKERFILE.into());
        let context = LocalContext::prepare(dir, Some(&dockerfile), BuilderKind::BuildKit)?;
        let digest = folder_digest(&context, platform)?;
        let identity = blake3::hash(project.as_bytes());
        let repository = format!(
            "{HELPER_REPOSITORY}/{}-{}",
            sanitize(project),
            &identity.to_hex()[..8]
        );
        let reference = format!("{repository}:{}", &digest[..32]);
        let request = BuildRequest {
            tag: reference.clone(),
            dockerfile: context.session_dockerfile().to_string(),
            builder: BuilderKind::BuildKit,
            platform: platform.map(str::to_string),
            ..Default::default()
        };
        Ok(Helper {
            name: name.to_string(),
            repository,
            reference,
            context,
            request,
        })
    }

    /// Makes sure the daemon has this helper image: built unless it is there already (made
    /// for another service, or left by an interrupted run). One at a time, so that two builds
    /// of the same content never export it at once.
    pub async fn ensure(
        &self,
        docker: &Docker,
        mut on_line: impl FnMut(&str),
    ) -> Result<(), BuildError> {
        let _one_at_a_time = MAKING.lock().await;
        if docker.inspect_image(&self.reference).await.is_ok() {
            return Ok(());
        }
        let name = self.name.clone();
        crate::build::build(docker, &self.request, &self.context, |line| {
            on_line(&format!("[context {name}] {line}"))
        })
        .await
        .map_err(|e| match e {
            BuildError::Daemon { message, log_tail } => BuildError::Daemon {
                message: format!(
                    "building the image of additional context `{}`: {message}",
                    self.name
                ),
                log_tail,
            },
        })
    }

    /// Removes every tag of this helper's repository: this build's, and any an interrupted
    /// run left. Failures are only logged: the build's outcome does not depend on them.
    pub async fn remove(&self, docker: &Docker) {
        let filters = std::collections::HashMap::from([(
            "reference".to_string(),
            vec![self.repository.clone()],
        )]);
        let options = bollard::query_parameters::ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let tags: Vec<String> = match docker.list_images(Some(options)).await {
            Ok(images) => images
                .into_iter()
                .flat_map(|i| i.repo_tags)
                .filter(|t| t.starts_with(&format!("{}:", self.repository)))
                .collect(),
            Err(e) => {
                tracing::debug!(repository = %self.repository, error = %e, "context images not listed");
                vec![self.reference.clone()]
            }
        };
        for tag in tags {
            if let Err(e) = docker
                .remove_image(
                    &tag,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await
            {
                tracing::debug!(%tag, error = %e, "context image not removed");
            }
        }
    }
}

/// Lowercase letters, digits and single dashes: a valid repository path component.
fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(100).collect();
    if out.is_empty() {
        "context".into()
    } else {
        out
    }
}

/// BLAKE3 of the folder as the helper build reads it: every entry's path, type, permission
/// bits, link target, size and content, and the platform. Not modification times or owners:
/// BuildKit's cache ignores them too, so a fresh checkout gives the same helper.
pub fn folder_digest(ctx: &LocalContext, platform: Option<&str>) -> Result<String, ContextError> {
    let mut h = blake3::Hasher::new();
    h.update(b"wharf-context-3\0");
    h.update(platform.unwrap_or("").as_bytes());
    h.update(b"\0");
    // The entries as the archive of this context holds them: `.dockerignore` applied, plus
    // the helper's own Dockerfile (always the same bytes).
    crate::entry_digest::hash_context(&mut h, ctx)?;
    Ok(h.finalize().to_hex().to_string())
}
