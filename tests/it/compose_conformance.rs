//! Compose fidelity: wharf must read every compose project exactly as docker compose v2 does.
//!
//! Each test runs `tests/conformance/run.py` over a corpus with the reference docker compose
//! v2 binary of the test bed (`WHARF_TEST_COMPOSE`) and the wharf binary built for this test, and
//! fails naming every case where the two disagree. The runner's docstring describes the
//! comparison and the case format.

use crate::support::bed::compose_binary;
use crate::support::wharf_bin;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared corpora live beside the clone (`../shared`), in CI as on a workstation.
fn shared(relative: &str) -> PathBuf {
    let dir = repo().join("..").join("shared").join(relative);
    assert!(
        dir.is_dir(),
        "{} is missing: the shared compose corpora must sit beside the clone as ../shared",
        dir.display()
    );
    dir
}

fn conform(corpora: &[PathBuf], strict: bool) {
    let reference = compose_binary();
    let runner = repo().join("tests/conformance/run.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&runner);
    if strict {
        cmd.arg("--strict");
    }
    cmd.arg(&reference).arg(wharf_bin()).args(corpora);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", runner.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by `cargo test -- --nocapture`, and with the failure below.
    println!("{stdout}");
    if !out.status.success() {
        let failing: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("FAIL") || l.starts_with("CASE"))
            .collect();
        panic!(
            "{} differs from docker compose v2 ({} cases):\n{}\n{}\n{}",
            corpora
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(" + "),
            failing.len(),
            failing.join("\n"),
            stdout
                .lines()
                .last()
                .unwrap_or("(the runner printed nothing)"),
            stderr.trim()
        );
    }
}

#[test]
fn own_corpus_matches_docker_compose() {
    // The benchmark project is a case too: what is timed must also be right.
    conform(
        &[
            repo().join("tests/conformance/corpus"),
            repo().join("bench/compose/corpus"),
        ],
        true,
    );
}

#[test]
fn starter_corpus_matches_docker_compose() {
    conform(&[shared("compose-conformance/corpus")], false);
}

#[test]
fn real_world_projects_match_docker_compose() {
    conform(&[shared("real-world-compose")], false);
}
