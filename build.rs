//! Embeds the commit wharf is built from in `wharf --version` (`0.1.0 (1a2b3c4d5e6f 2026-05-01)`).
//!
//! Only the git binary is asked, and any failure — no git, no repository (a crates.io
//! download, a source tarball) — leaves the plain package version. Written by hand rather than
//! with a build-dependency: it is a dozen lines, and it must degrade silently.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    println!("cargo:rerun-if-changed=build.rs");

    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"]);
    let date = git(dir, &["log", "-1", "--format=%cs", "HEAD"]);
    let full = match (commit, date) {
        (Some(c), Some(d)) => format!("{version} ({c} {d})"),
        (Some(c), None) => format!("{version} ({c})"),
        _ => version,
    };
    println!("cargo:rustc-env=WHARF_VERSION={full}");

    // Rebuild when HEAD moves: HEAD itself, the branch it points to, and packed refs. Only
    // files that exist are named (a missing one would make cargo rerun this every time).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        // Relative to `dir` unless git answers with an absolute path (join keeps those).
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]).map(|p| dir.join(p)) {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
