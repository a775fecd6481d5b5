//! What a release run reports: the manifest it prints (`--manifest -`) and its JSON progress
//! events (`--progress json`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Output;

/// The manifest a run that must succeed printed on stdout; fails naming `what` with wharf's
/// stderr when the run failed or printed no manifest.
pub fn manifest_of(out: &Output, what: &str) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: no manifest: {e}"))
}

/// Each released service's digest, as a manifest lists them.
pub fn digests(manifest: &Value) -> BTreeMap<String, String> {
    manifest["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            (
                i["service"].as_str().unwrap().to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The JSON progress events of a run, in the order it wrote them to stderr (lines that are no
/// JSON are passed over).
pub fn progress_events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}
