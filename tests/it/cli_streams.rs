//! stdout holds results only — the resolved project, the plan, a manifest written to `-` —
//! while progress, logs and errors go to stderr, in every progress mode. The build tests need
//! the bed (its daemon and plain registry).

use crate::support::{bed_var, run, stderr, stdout, two_service_project, unique, wharf, SHA};

#[test]
fn config_and_plan_print_only_their_result() {
    let dir = tempfile::tempdir().unwrap();
    two_service_project(dir.path(), "streams", 0, "wharf-test/busybox:1");

    let out = run(wharf(dir.path()).arg("config"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&stdout(&out)).expect("config prints YAML");
    assert!(yaml["services"]["api"].is_mapping(), "{}", stdout(&out));

    let out = run(wharf(dir.path()).args(["config", "--format", "json"]));
    assert!(
        out.status.success() && stderr(&out).is_empty(),
        "{}",
        stderr(&out)
    );
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("config prints JSON");

    for progress in ["plain", "json", "tty"] {
        let out = run(wharf(dir.path())
            .args(["--progress", progress, "plan", "--format", "json"])
            .args(["--registry", "registry.example.com"])
            .env("GITHUB_SHA", SHA));
        assert!(out.status.success(), "{}", stderr(&out));
        let plan: serde_json::Value =
            serde_json::from_str(&stdout(&out)).expect("plan --format json prints JSON only");
        assert_eq!(plan["services"].as_array().map(Vec::len), Some(2));
        // Not a terminal: `tty` says it shows plain progress instead, on stderr.
        if progress == "tty" {
            assert!(
                stderr(&out).contains("needs a terminal"),
                "{}",
                stderr(&out)
            );
        } else {
            assert!(stderr(&out).is_empty(), "{progress}: {}", stderr(&out));
        }
    }
}

#[test]
fn build_push_manifest_to_stdout_and_progress_to_stderr() {
    let registry = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("streams");
    two_service_project(dir.path(), &prefix, 0, &bed_var("WHARF_TEST_BASE_IMAGE"));
    let out = run(wharf(dir.path())
        .args([
            "build",
            "--push",
            "--registry",
            &registry,
            "--manifest",
            "-",
        ])
        .env("GITHUB_SHA", SHA));
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err_text}");

    let manifest: serde_json::Value =
        serde_json::from_str(&out_text).expect("stdout is exactly the manifest");
    let images = manifest["images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "{out_text}");
    for image in images {
        let service = image["service"].as_str().unwrap();
        let digest = image["digest"].as_str().unwrap();
        assert!(digest.starts_with("sha256:"), "{out_text}");
        assert_eq!(
            image["uri"].as_str().unwrap(),
            format!("{registry}/{prefix}/{service}@{digest}")
        );
        // Progress named the service and the digest on stderr, never on stdout.
        assert!(
            err_text.contains(&format!("[{service}] pushed :{SHA} {digest}")),
            "{err_text}"
        );
        assert!(
            err_text.contains(&format!("[{service}] built in ")),
            "{err_text}"
        );
    }
    assert!(
        !out_text.contains("[api]")
            && !out_text.contains("[worker]")
            && !out_text.contains("phase"),
        "no progress on stdout: {out_text}"
    );
    for line in err_text.lines() {
        assert!(
            line.starts_with("[api] ")
                || line.starts_with("[worker] ")
                || line.starts_with("phase ")
                || line.starts_with("built ")
                || line.starts_with("released "),
            "every plain line names its service or is a phase/summary: {line}"
        );
    }
}

#[test]
fn json_progress_is_one_event_per_line() {
    let registry = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("jsonlines");
    two_service_project(dir.path(), &prefix, 0, &bed_var("WHARF_TEST_BASE_IMAGE"));
    let out = run(wharf(dir.path())
        .args([
            "--progress",
            "json",
            "build",
            "--push",
            "--registry",
            &registry,
        ])
        .args(["--tag", "{git_sha}", "--tag", "latest", "--manifest", "-"])
        .env("GITHUB_SHA", SHA));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("the manifest on stdout");
    let events: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for service in ["api", "worker"] {
        let mine: Vec<&str> = events
            .iter()
            .filter(|e| e["service"] == service)
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            mine,
            ["queued", "building", "built", "pushing", "pushed", "pushing", "pushed"],
            "{service}: {events:?}"
        );
        let pushed: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["service"] == service && e["event"] == "pushed")
            .collect();
        assert_eq!(pushed[0]["tag"], SHA);
        assert_eq!(pushed[1]["tag"], "latest");
        assert!(pushed[0]["digest"].as_str().unwrap().starts_with("sha256:"));
        assert_eq!(pushed[0]["digest"], pushed[1]["digest"]);
    }
    let notes: Vec<&str> = events
        .iter()
        .filter(|e| e.get("service").is_none())
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        notes,
        ["phase", "summary", "phase", "summary"],
        "{events:?}"
    );
}
