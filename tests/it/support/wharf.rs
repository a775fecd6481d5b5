//! The wharf binary under test, in an environment that cannot change what it does or prints.

use std::path::Path;
use std::process::{Command, Output};

/// A fixed 40-hex commit for output that must not change between runs.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Variable namespaces wharf (or a CI system it reads) owns: its own settings, compose's, and
/// the CI systems' whose variables name the commit, the branch or the output mode (GitHub
/// Actions, GitLab `CI_*`, Buildkite, CircleCI, Jenkins `GIT_*`, CodeBuild). Whole namespaces,
/// so a variable wharf learns to read later cannot leak in from the machine running the tests.
const OWNED_PREFIXES: &[&str] = &[
    "WHARF_",
    "COMPOSE_",
    "GITHUB_",
    "CI_",
    "BUILDKITE_",
    "CIRCLE_",
    "GIT_",
    "CODEBUILD_",
];

/// Single variables that change wharf's output: CI detection, logging, terminal width and
/// colour, a fixed build time.
const OWNED_NAMES: &[&str] = &[
    "CI",
    "RUST_LOG",
    "COLUMNS",
    "NO_COLOR",
    "CLICOLOR_FORCE",
    "SOURCE_DATE_EPOCH",
];

/// The wharf binary's path.
pub fn wharf_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wharf"))
}

/// Removes from `c`'s environment the variables of the machine running the tests that would
/// change what wharf does or prints (inside GitHub Actions they would also fold the output into
/// groups and write to the real job summary). The bed's coordinates (AWS_*, WHARF_TEST_*,
/// DOCKER_*) stay.
pub fn without_owned_env(c: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let owned =
            OWNED_PREFIXES.iter().any(|p| name.starts_with(p)) || OWNED_NAMES.contains(&name);
        if owned && !name.starts_with("WHARF_TEST_") {
            c.env_remove(name);
        }
    }
    c
}

/// The wharf binary, run in `dir` without the machine's variables (see [`without_owned_env`]),
/// with a fixed help width and no colour.
pub fn wharf(dir: &Path) -> Command {
    let mut c = Command::new(wharf_bin());
    c.current_dir(dir);
    without_owned_env(&mut c)
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1");
    c
}

/// wharf in `dir` as a GitHub Actions workflow step of commit [`SHA`], writing its job summary
/// (`summary.md`) and step outputs (`output.txt`) under `dir`.
pub fn github_step(dir: &Path) -> Command {
    let mut c = wharf(dir);
    c.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("GITHUB_OUTPUT", dir.join("output.txt"))
        .env("GITHUB_WORKSPACE", dir)
        .env("GITHUB_SHA", SHA);
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

/// A run's stdout and stderr, as text.
pub fn texts(o: &Output) -> (String, String) {
    (stdout(o), stderr(o))
}
