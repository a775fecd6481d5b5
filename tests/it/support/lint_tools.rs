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
