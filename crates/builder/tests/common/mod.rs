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
