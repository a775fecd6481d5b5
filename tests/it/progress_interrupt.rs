//! Ctrl-C (SIGINT) in the middle of phase 2: wharf stops moving tags, puts back what it moved,
//! exits 130 and says exactly which moving tags it could not account for — so the user knows
//! where `latest` is. The registry is the bed's plain registry behind a proxy that goes away at
//! the first write of `latest`, which holds the release in its retries long enough to
//! interrupt it there (and then cannot be asked whether a tag moved).

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
        .skip_while(|l| !l.starts_with("error: interrupted while moving the moving tags"))
        .collect();
    assert!(!account.is_empty(), "the interruption is reported: {err}");
    for service in ["api", "worker"] {
        // The registry went away with the write: wharf cannot tell whether it landed, and says
        // so for each `latest`, never that it landed.
        assert!(
            account
                .iter()
                .any(|l| l.contains(&format!("/{service}:latest (cannot tell whether it moved"))),
            "{service}'s latest is accounted for:\n{err}"
        );
        assert!(
            !err.contains(&format!("[{service}] pushed :latest")),
            "{err}"
        );
        let direct = format!("{plain}/{prefix}/{service}:latest");
        assert_eq!(served_plain(&direct), None, "{direct} never moved");
    }
    assert!(
        account
            .iter()
            .any(|l| l.contains("run the same command again")),
        "{err}"
    );
}

/// What the plain registry serves for `reference`, asked directly (not through the proxy).
fn served_plain(reference: &str) -> Option<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        wharf_pusher::api::RegistryApi::default()
            .manifest_digest(reference, None)
            .await
            .unwrap()
    })
}
