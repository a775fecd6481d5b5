//! What the builder's tests share: the test bed's coordinates, unique names, small fixtures, and
//! looks into the daemon's images through the docker client.
//!
//! Tests that need the bed fail, never skip, without it, and say how to bring it up.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// A variable `scripts/testbed env` exports.
pub fn bed_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the test bed.\n\
             Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first."
        ),
    }
}

/// The base image the bed imports (no image can be pulled from the internet).
pub fn base_image() -> String {
    bed_var("WHARF_TEST_BASE_IMAGE")
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A unique image name under `wharf-test/`.
pub fn test_image(prefix: &str) -> String {
    format!("wharf-test/{}", unique(prefix))
}

/// Writes `content` to `rel` under `dir`, creating parents.
pub fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// What `cat PATH` prints in a container of `image`.
pub fn cat(image: &str, path: &str) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", image, "cat", path])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker run {image} cat {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ID of the local image `image`.
pub fn image_id(image: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "docker image inspect {image}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes local images, whatever holds them.
pub fn remove(images: &[&str]) {
    let _ = Command::new("docker")
        .arg("rmi")
        .arg("-f")
        .args(images)
        .output();
}

/// The compose project in `dir` under project name `name`, with only `PATH` in its
/// environment (so that the machine's variables cannot change what is built).
pub fn load_project(dir: &Path, name: &str) -> wharf_compose::Project {
    wharf_compose::load(&wharf_compose::ProjectOptions {
        project_name: Some(name.into()),
        working_dir: dir.to_path_buf(),
        environment: [("PATH".to_string(), "/usr/bin".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    })
    .expect("the project loads")
}

/// The bed's registry that wants a password (its private ECR stand-in), and that password's
/// login.
pub struct PrivateRegistry {
    pub host: String,
    pub username: String,
    pub password: String,
}

impl PrivateRegistry {
    pub fn from_bed() -> Self {
        PrivateRegistry {
            host: bed_var("WHARF_TEST_ECR_REGISTRY"),
            username: bed_var("WHARF_TEST_ECR_USERNAME"),
            password: bed_var("WHARF_TEST_ECR_PASSWORD"),
        }
    }

    /// Pushes the local image `image` to the registry as a new tag of `repository` (under the
    /// registry's host); returns the pushed reference.
    pub async fn push(&self, docker: &bollard::Docker, image: &str, repository: &str) -> String {
        use futures_util::StreamExt;
        let repository = format!("{}/{repository}", self.host);
        let tag = unique("t");
        docker
            .tag_image(
                image,
                Some(bollard::query_parameters::TagImageOptions {
                    repo: Some(repository.clone()),
                    tag: Some(tag.clone()),
                }),
            )
            .await
            .expect("tag");
        let mut push = docker.push_image(
            &repository,
            Some(bollard::query_parameters::PushImageOptions {
                tag: Some(tag.clone()),
                ..Default::default()
            }),
            Some(bollard::auth::DockerCredentials {
                username: Some(self.username.clone()),
                password: Some(self.password.clone()),
                ..Default::default()
            }),
        );
        while let Some(item) = push.next().await {
            item.expect("the push succeeds");
        }
        format!("{repository}:{tag}")
    }

    /// A Docker config (`config.json` in `dir`) holding this registry's login.
    pub fn write_docker_config(&self, dir: &Path) {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        std::fs::write(
            dir.join("config.json"),
            format!(
                "{{\"auths\":{{\"{}\":{{\"auth\":\"{encoded}\"}}}}}}",
                self.host
            ),
        )
        .unwrap();
    }
}
