//! The offline linters the adoption checks run: PyPI's check-jsonschema (GitHub's workflow and
//! action schemas, built in), zizmor (a security linter for workflows) and parliament (an IAM
//! policy linter). `scripts/lint-tools` installs them; a missing one fails the test that
//! needs it, naming that script.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The tool's path on PATH; panics with the fix when it is not installed.
pub fn lint_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run scripts/lint-tools (PyPI, offline once installed)"
            )
        })
}

/// Runs a linter, panicking when it cannot start.
pub fn lint(name: &str, args: &[&str]) -> Output {
    Command::new(lint_tool(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} does not run: {e}"))
}

/// Parliament's findings on a policy document (empty: none).
pub fn parliament_findings(policy: &str) -> String {
    let out = lint("parliament", &["--string", policy]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || !text.trim().is_empty(),
        "parliament failed without a finding: {out:?}"
    );
    text.trim().to_string()
}

/// What a GitHub YAML file is, for the schema it is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GithubFile {
    Workflow,
    Action,
}

impl GithubFile {
    fn schema(self) -> &'static str {
        match self {
            GithubFile::Workflow => "vendor.github-workflows",
            GithubFile::Action => "vendor.github-actions",
        }
    }
}

/// Checks `path` against GitHub's schema for its kind and with zizmor (offline, the
/// repository's zizmor policy): panics with the tools' output on a schema error or a
/// finding of high severity.
pub fn check_github_file(
    path: &std::path::Path,
    kind: GithubFile,
    zizmor_config: &std::path::Path,
) {
    let file = path.to_str().expect("a UTF-8 path");
    let out = lint(
        "check-jsonschema",
        &["--builtin-schema", kind.schema(), file],
    );
    assert!(
        out.status.success(),
        "{file} does not match GitHub's {kind:?} schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = zizmor_config.to_str().expect("a UTF-8 path");
    let out = lint(
        "zizmor",
        &[
            "--offline",
            "--no-progress",
            "--config",
            config,
            "--min-severity",
            "high",
            file,
        ],
    );
    assert!(
        out.status.success(),
        "zizmor finds a high-severity problem in {file}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
