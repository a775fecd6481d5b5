//! The commit being released: from CI variables when set (the checkout may be shallow or
//! detached there), else from the git repository around the project.
//!
//! The `git` binary answers the repository questions: it is what the user's checkout was made
//! with, so its notion of "dirty" (ignore rules, attributes, submodules) is exactly theirs.

use std::path::Path;
use std::process::Command;

/// What the tag templates may say about the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The full 40-hex commit.
    pub sha: String,
    pub branch: Option<String>,
    /// Uncommitted changes in the work tree (never true for CI-provided commits).
    pub dirty: bool,
    /// Where the commit came from, for messages (`GITHUB_SHA`, `git`).
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("no commit to tag with: {0}\n  run wharf inside a git checkout, or set GITHUB_SHA (or CI_COMMIT_SHA) to the commit being released")]
    NoCommit(String),
    #[error("{var}={value:?} is not a full 40-hex commit SHA")]
    BadSha { var: String, value: String },
}

/// CI systems' variables for the commit and the branch, in the order they are consulted.
const SHA_VARS: &[&str] = &[
    "WHARF_GIT_SHA",
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BUILDKITE_COMMIT",
    "CIRCLE_SHA1",
    "GIT_COMMIT",
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
];
const BRANCH_VARS: &[&str] = &[
    "WHARF_GIT_BRANCH",
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "BUILDKITE_BRANCH",
    "CIRCLE_BRANCH",
    "GIT_BRANCH",
];

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The committer time of commit `sha` (seconds since 1970), read from the repository in `dir`;
/// `None` when there is no repository or it does not hold the commit.
pub fn commit_time(dir: &Path, sha: &str) -> Option<i64> {
    if !is_full_sha(sha) {
        return None;
    }
    git(dir, &["show", "-s", "--format=%ct", sha])
        .ok()?
        .parse()
        .ok()
}

/// The first parent of commit `sha`, from the repository in `dir`; `None` when it is not known
/// there (a shallow clone of depth 1, no repository, a root commit).
pub fn parent(dir: &Path, sha: &str) -> Option<String> {
    if !is_full_sha(sha) {
        return None;
    }
    git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{sha}^1^{{commit}}"),
        ],
    )
    .ok()
    .filter(|p| is_full_sha(p))
}

/// Finds the revision for the project in `dir`, with `env` the process environment.
pub fn revision(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Revision, GitError> {
    let branch_from_env = || {
        BRANCH_VARS
            .iter()
            .find_map(|v| env(v).filter(|b| !b.is_empty()))
            .map(|b| b.trim_start_matches("refs/heads/").to_string())
    };
    for var in SHA_VARS {
        if let Some(value) = env(var).filter(|v| !v.is_empty()) {
            if !is_full_sha(&value) {
                return Err(GitError::BadSha {
                    var: var.to_string(),
                    value,
                });
            }
            return Ok(Revision {
                sha: value.to_ascii_lowercase(),
                branch: branch_from_env(),
                dirty: false,
                source: var.to_string(),
            });
        }
    }
    // One git process for the commit, the branch and the work tree's state (porcelain v2's
    // `# branch.*` headers): each spawn costs a few milliseconds, on every run.
    let status = git(
        dir,
        &[
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=normal",
        ],
    )
    .map_err(GitError::NoCommit)?;
    let header = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("# ")?.strip_prefix(name)?.strip_prefix(' '))
    };
    let sha = match header("branch.oid") {
        Some(sha) if is_full_sha(sha) => sha.to_ascii_lowercase(),
        Some("(initial)") => {
            return Err(GitError::NoCommit(
                "the repository has no commit yet".into(),
            ))
        }
        other => {
            return Err(GitError::NoCommit(format!(
                "git answered {other:?} for HEAD"
            )))
        }
    };
    let branch = header("branch.head")
        .filter(|b| !b.is_empty() && *b != "(detached)")
        .map(str::to_string)
        .or_else(branch_from_env);
    let dirty = status.lines().any(|l| !l.starts_with('#'));
    Ok(Revision {
        sha,
        branch,
        dirty,
        source: "git".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_variables_win_and_are_checked() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let env = |k: &str| match k {
            "GITHUB_SHA" => Some(sha.to_string()),
            "GITHUB_REF_NAME" => Some("main".to_string()),
            _ => None,
        };
        let r = revision(Path::new("/nonexistent"), &env).unwrap();
        assert_eq!(r.sha, sha);
        assert_eq!(r.branch.as_deref(), Some("main"));
        assert!(!r.dirty);
        let bad = |k: &str| (k == "GITHUB_SHA").then(|| "abc123".to_string());
        assert!(matches!(
            revision(Path::new("/"), &bad),
            Err(GitError::BadSha { .. })
        ));
    }

    #[test]
    fn a_repository_gives_sha_branch_and_dirtiness() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q", "-b", "trunk"]);
        run(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "first",
        ]);
        let none = |_: &str| None;
        let r = revision(dir.path(), &none).unwrap();
        assert!(is_full_sha(&r.sha));
        assert_eq!(r.branch.as_deref(), Some("trunk"));
        assert!(!r.dirty);
        std::fs::write(dir.path().join("new.txt"), "x").unwrap();
        assert!(revision(dir.path(), &none).unwrap().dirty);
        // A detached HEAD names no branch: the CI's variable does.
        run(&["checkout", "-q", "--detach"]);
        let ci = |k: &str| (k == "GITHUB_REF_NAME").then(|| "release".to_string());
        let detached = revision(dir.path(), &ci).unwrap();
        assert_eq!(detached.sha, r.sha);
        assert_eq!(detached.branch.as_deref(), Some("release"));
        // A repository without a commit has nothing to tag with.
        let empty = tempfile::tempdir().unwrap();
        assert!(Command::new("git")
            .args(["init", "-q"])
            .current_dir(empty.path())
            .status()
            .unwrap()
            .success());
        assert!(matches!(
            revision(empty.path(), &none),
            Err(GitError::NoCommit(m)) if m.contains("no commit yet")
        ));
    }

    #[test]
    fn outside_a_repository_the_error_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        let e = revision(dir.path(), &none).unwrap_err().to_string();
        assert!(e.contains("GITHUB_SHA"), "{e}");
    }
}
