//! What integration tests share: the test bed's coordinates and the wharf binary.
//!
//! Tests that need the bed never skip: without it they fail and say how to bring it up.
#![allow(dead_code)]

pub mod daemon_proxy;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The components `scripts/testbed up` brings up, as `scripts/testbed env` exports them.
pub struct Bed {
    pub ecr_registry: String,
    pub ecr_password: String,
    pub public_registry: String,
    pub public_password: String,
    pub plain_registry: String,
    pub base_image: String,
    pub compose: PathBuf,
}

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the test bed.\n\
             Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first \
             (scripts/test does both)."
        ),
    }
}

/// The bed's coordinates; panics with instructions when they are missing.
pub fn bed() -> Bed {
    let bed = Bed {
        ecr_registry: var("WHARF_TEST_ECR_REGISTRY"),
        ecr_password: var("WHARF_TEST_ECR_PASSWORD"),
        public_registry: var("WHARF_TEST_PUBLIC_REGISTRY"),
        public_password: var("WHARF_TEST_PUBLIC_PASSWORD"),
        plain_registry: var("WHARF_TEST_PLAIN_REGISTRY"),
        base_image: var("WHARF_TEST_BASE_IMAGE"),
        compose: PathBuf::from(var("WHARF_TEST_COMPOSE")),
    };
    var("AWS_ENDPOINT_URL");
    assert!(
        bed.compose.exists(),
        "WHARF_TEST_COMPOSE={} does not exist: run scripts/testbed up",
        bed.compose.display()
    );
    bed
}

/// The wharf binary under test.
pub fn wharf_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wharf"))
}

/// The wharf binary as a command, without the GitHub Actions variables of the machine running
/// the tests (inside Actions they would fold the output into groups and write to the real job
/// summary and step outputs) and without a fixed build time.
pub fn wharf_command() -> Command {
    let mut c = Command::new(wharf_bin());
    for name in [
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
        "SOURCE_DATE_EPOCH",
    ] {
        c.env_remove(name);
    }
    c
}

/// Runs wharf in `dir` with `args`.
pub fn wharf(dir: &Path, args: &[&str]) -> Output {
    wharf_command()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the wharf binary runs")
}

/// A unique suffix, so tests sharing the bed's registries never see each other's tags.
pub fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A random-enough 40-hex commit, so each test releases under tags of its own.
pub fn fake_sha() -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(unique("sha").as_bytes()))[..40].to_string()
}

/// Writes `contents` to `rel` under `dir`, creating parents.
pub fn write(dir: &Path, rel: &str, contents: &str) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("parent dir");
    }
    std::fs::write(&p, contents).expect("write file");
    p
}
