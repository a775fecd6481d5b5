//! Files, names and small projects the tests make.

use std::path::{Path, PathBuf};

/// Writes `contents` to `rel` under `dir`, creating parents.
pub fn write(dir: &Path, rel: &str, contents: &str) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("parent folder");
    }
    std::fs::write(&p, contents).expect("write the file");
    p
}

/// A unique suffix, so tests sharing the bed's registries and daemon never see each other's
/// tags or images.
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

/// Output with the temporary folder's path (as given and as resolved) written `[project]`.
pub fn redact(text: &str, dir: &Path) -> String {
    let mut out = text.to_string();
    if let Ok(real) = dir.canonicalize() {
        out = out.replace(&real.display().to_string(), "[project]");
    }
    out.replace(&dir.display().to_string(), "[project]")
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

/// Runs git in `dir` as a fixed author; returns its output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
