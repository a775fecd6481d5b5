//! What the command-line and progress tests share: the wharf binary in an environment that
//! cannot change its output (no inherited WHARF_*, COMPOSE_*, GitHub or CI variables, a fixed
//! help width), and small fixtures.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// A fixed 40-hex commit for output that must not change between runs.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Variables that name the commit or branch (wharf reads them in this order).
const REVISION_VARS: &[&str] = &[
    "WHARF_GIT_SHA",
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BUILDKITE_COMMIT",
    "CIRCLE_SHA1",
    "GIT_COMMIT",
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
    "WHARF_GIT_BRANCH",
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "BUILDKITE_BRANCH",
    "CIRCLE_BRANCH",
    "GIT_BRANCH",
];

/// The wharf binary, run in `dir` with an environment that does not leak into its output.
/// The bed's coordinates (AWS_*, WHARF_TEST_*, DOCKER_*) stay.
pub fn wharf(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let leaks = (name.starts_with("WHARF_") && !name.starts_with("WHARF_TEST_"))
            || name.starts_with("COMPOSE_")
            || name.starts_with("GITHUB_")
            || REVISION_VARS.contains(&name)
            || matches!(name, "CI" | "RUST_LOG" | "COLUMNS" | "CLICOLOR_FORCE");
        if leaks {
            c.env_remove(name);
        }
    }
    c.env("COLUMNS", "100").env("NO_COLOR", "1");
    c
}

pub fn run(c: &mut Command) -> Output {
    c.output().expect("the wharf binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `contents` to `rel` under `dir`, creating parents.
pub fn write(dir: &Path, rel: &str, contents: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("parent folder");
    std::fs::write(&p, contents).expect("write the file");
}

/// Output with the temporary folder's path (as given and as resolved) written `[project]`.
pub fn redact(text: &str, dir: &Path) -> String {
    let mut out = text.to_string();
    if let Ok(real) = dir.canonicalize() {
        out = out.replace(&real.display().to_string(), "[project]");
    }
    out.replace(&dir.display().to_string(), "[project]")
}

/// A unique suffix, so tests sharing the bed's registries and daemon never meet.
pub fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}{nanos}", std::process::id())
}

/// The test bed's value of `name`; fails, saying how to bring the bed up, when it is missing.
pub fn bed_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the test bed.\n\
             Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first \
             (scripts/test does both)."
        ),
    }
}

/// A project of two services built FROM `base`, each with a step that takes `seconds` and a
/// build argument that defeats the daemon's cache. Images are `prefix/api` and
/// `prefix/worker`.
pub fn two_service_project(dir: &Path, prefix: &str, seconds: u32, base: &str) {
    let stamp = unique("run");
    write(
        dir,
        "compose.yaml",
        &format!(
            "name: duo\nservices:\n  api:\n    image: {prefix}/api\n    build:\n      context: ./api\n      args:\n        STAMP: {stamp}\n  worker:\n    image: {prefix}/worker\n    build:\n      context: ./worker\n      args:\n        STAMP: {stamp}\n      dockerfile_inline: |\n        FROM {base}\n        ARG STAMP\n        RUN echo worker $$STAMP && sleep {seconds}\n        COPY job /job\n"
        ),
    );
    write(
        dir,
        "api/Dockerfile",
        &format!("FROM {base}\nARG STAMP\nRUN echo api $STAMP && sleep {seconds}\nCOPY app /app\n"),
    );
    write(dir, "api/app", "app\n");
    write(dir, "worker/job", "job\n");
}
