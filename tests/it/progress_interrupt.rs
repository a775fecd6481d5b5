//! Ctrl-C (SIGINT) in the middle of a release: wharf exits 130 and says exactly what landed
//! (every identity tag), what was under way, and what was never pushed — so the user knows
//! `latest` did not move. The registry is the bed's plain registry behind a proxy that goes
//! away at the first write of `latest`, which holds the release in its retries long enough to
//! interrupt it there.

use crate::support::proxy::Proxy;
use crate::support::{bed_var, two_service_project, unique, wharf, SHA};
use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn sigint_during_the_moving_tags_accounts_for_every_tag() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("int");
    two_service_project(dir.path(), &prefix, 0, &bed_var("WHARF_TEST_BASE_IMAGE"));
    let trigger = Arc::new(|chunk: &str| {
        chunk.starts_with("PUT /v2/") && chunk.contains("/manifests/latest ")
    });
    let proxy = Proxy::start(&plain, Some(trigger));

    let mut child = wharf(dir.path())
        .args(["build", "--push", "--registry", &proxy.addr])
        .args(["--tag", "{git_sha}", "--tag", "latest"])
        .env("GITHUB_SHA", SHA)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wharf starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(line) => {
                let retrying = line.contains("retrying") && line.contains(":latest");
                seen.push(line);
                if retrying {
                    break;
                }
            }
            Err(_) => panic!(
                "wharf never retried the write of `latest`:\n{}",
                seen.join("\n")
            ),
        }
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("wharf ends");
    seen.extend(rx.iter());
    let err = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{err}");

    let account: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("interrupted"))
        .collect();
    assert_eq!(
        account.first().copied(),
        Some("interrupted: the release is incomplete"),
        "{err}"
    );
    let pushed = account
        .iter()
        .find(|l| l.starts_with("  pushed: "))
        .unwrap_or_else(|| panic!("what landed: {err}"));
    for service in ["api", "worker"] {
        assert!(pushed.contains(&format!("{service} (:{SHA})")), "{pushed}");
        // `latest` of each service is either under way or not pushed, never said to have landed.
        let latest_named = account.iter().any(|l| {
            (l.starts_with("  under way") || l.starts_with("  not pushed"))
                && l.contains(&format!("{service} (:latest)"))
        });
        assert!(latest_named, "{service}'s latest is accounted for:\n{err}");
    }
    assert!(!pushed.contains(":latest"), "{pushed}");
    assert!(
        account
            .last()
            .is_some_and(|l| l.contains("run the same command again")),
        "{err}"
    );
    assert!(
        !err.contains("error: "),
        "an interruption is not reported as another error: {err}"
    );
}
