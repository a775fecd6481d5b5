//! The bed's Docker engine and the reference docker compose, seen from the docker CLI: what an
//! image holds, and the reference build of a project.

use super::bed::compose_binary;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// The reference docker compose v2 binary, run in `dir`.
pub fn compose(dir: &Path) -> Command {
    let mut c = Command::new(compose_binary());
    c.current_dir(dir);
    c
}

/// Runs `cmd` in a fresh container of `image` and returns its output.
pub fn run_in(image: &str, cmd: &str) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", image, "sh", "-c", cmd])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker run {image} {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What an image holds under the folder `/{root}`, one line per entry keyed by path: type,
/// mode, owner, size, link target, content digest. With `with_root`, the folder itself is an
/// entry too (its mode and owner are compared as well).
///
/// Generated Dockerfile names in small files (`.dockerfile.` and 20 hex digits, random in the
/// docker CLI) are replaced by a placeholder before hashing.
pub fn files_under(image: &str, root: &str, with_root: bool) -> BTreeMap<String, String> {
    let created = Command::new("docker")
        .args(["create", image, "true"])
        .output()
        .expect("docker runs");
    assert!(
        created.status.success(),
        "docker create {image}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let id = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let mut export = Command::new("docker")
        .args(["export", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker export runs");
    let mut archive = tar::Archive::new(export.stdout.take().unwrap());
    let under = format!("{root}/");
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if !(path.starts_with(&under) || with_root && path == root) {
            continue;
        }
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Regular => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Fifo => "fifo",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            _ => "other",
        };
        let mut line = format!(
            "{kind} mode={:o} owner={}:{} size={}",
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.size().unwrap()
        );
        if let Some(target) = entry.link_name().unwrap() {
            line.push_str(&format!(" -> {}", target.display()));
        }
        if kind == "file" {
            use sha2::Digest as _;
            let mut hasher = sha2::Sha256::new();
            if h.size().unwrap() < 1 << 16 {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                hasher.update(without_generated_names(&content));
            } else {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = entry.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            }
            let digest: String = hasher
                .finalize()
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
            line.push_str(&format!(" sha256={digest}…"));
        }
        files.insert(path, line);
    }
    export.wait().unwrap();
    let _ = Command::new("docker").args(["rm", &id]).output();
    files
}

/// `content` with every `.dockerfile.<20 hex digits>` replaced by a placeholder.
fn without_generated_names(content: &[u8]) -> Vec<u8> {
    const PREFIX: &[u8] = b".dockerfile.";
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let rest = &content[i..];
        if rest.starts_with(PREFIX)
            && rest.len() >= PREFIX.len() + 20
            && rest[PREFIX.len()..PREFIX.len() + 20]
                .iter()
                .all(|b| b.is_ascii_hexdigit())
        {
            out.extend_from_slice(b".dockerfile.<generated>");
            i += PREFIX.len() + 20;
        } else {
            out.push(content[i]);
            i += 1;
        }
    }
    out
}
