//! Build-context conformance: every case of `tests/context-corpus` is built by the reference
//! `docker compose build` and by wharf, and the files the two images hold under `/ctx` (each
//! case's Dockerfile is `COPY . /ctx`) must be identical: path, type, mode, owner, link target,
//! size and content.
//!
//! A case is a folder with `project/` (a compose project with one service, `app`) and an
//! optional `setup` file for what git cannot hold, one action per line, paths relative to the
//! case's copy:
//!
//! ```text
//! mkdir PATH                 chmod OCTAL PATH          chown UID:GID PATH
//! symlink TARGET PATH        hardlink EXISTING PATH    random PATH BYTES
//! write PATH                 fifo PATH                 socket PATH
//! mknod c|b MAJOR MINOR PATH rawwrite PATH             rawsymlink TARGET PATH
//! ```
//!
//! `rawwrite` and `rawsymlink` read `\xHH` in their words as that byte, for names that are
//! not UTF-8.
//!
//! A case whose folder has a `classic-unsupported` file (saying why) is one the reference cannot
//! build with its classic builder: for it, the classic run checks that compose still refuses.
//! Generated Dockerfile names (`.dockerfile.` and 20 hex digits, random in the docker CLI) are
//! replaced by a placeholder before file contents are compared.
//!
//! The wharf side reads the service's context and Dockerfile from `docker compose config` and
//! builds through wharf-builder: with BuildKit, the daemon reads the context through a session;
//! with the classic builder, wharf streams its context archive. Each case is checked twice:
//! with BuildKit (compose's default) and with the classic builder (`DOCKER_BUILDKIT=0` for
//! compose). `WHARF_CONTEXT_CASE=name` runs a single case.

use crate::support::{bed, files_under, unique};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_builder::build::{BuildRequest, BuilderKind};
use wharf_builder::context::Context;
use wharf_compose::Dockerfile;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/context-corpus")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Applies a case's `setup` actions inside `root`.
fn setup(case: &Path, root: &Path) {
    let Ok(text) = fs::read_to_string(case.join("setup")) else {
        return;
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = |i: usize| root.join(words[i]);
        let parent = |p: &Path| fs::create_dir_all(p.parent().unwrap()).unwrap();
        match words[0] {
            "mkdir" => fs::create_dir_all(at(1)).unwrap(),
            "write" => {
                parent(&at(1));
                fs::write(at(1), "x").unwrap();
            }
            "chmod" => {
                let mode = u32::from_str_radix(words[1], 8).unwrap();
                fs::set_permissions(at(2), fs::Permissions::from_mode(mode)).unwrap();
            }
            "chown" => {
                let (u, g) = words[1].split_once(':').unwrap();
                std::os::unix::fs::lchown(at(2), u.parse().ok(), g.parse().ok()).unwrap();
            }
            "symlink" => {
                parent(&at(2));
                std::os::unix::fs::symlink(words[1], at(2)).unwrap();
            }
            "hardlink" => {
                parent(&at(2));
                fs::hard_link(at(1), at(2)).unwrap();
            }
            "random" => {
                parent(&at(1));
                let size: u64 = words[2].parse().unwrap();
                let mut src = fs::File::open("/dev/urandom").unwrap().take(size);
                let mut out = fs::File::create(at(1)).unwrap();
                std::io::copy(&mut src, &mut out).unwrap();
                out.flush().unwrap();
            }
            "fifo" => {
                parent(&at(1));
                let made = Command::new("mkfifo").arg(at(1)).status().unwrap();
                assert!(made.success(), "mkfifo {}", words[1]);
            }
            "mknod" => {
                parent(&at(4));
                let made = Command::new("mknod")
                    .arg(at(4))
                    .args(&words[1..4])
                    .status()
                    .unwrap();
                assert!(made.success(), "mknod {}", words[4]);
            }
            "rawwrite" => {
                let path = root.join(raw(words[1]));
                parent(&path);
                fs::write(path, "x").unwrap();
            }
            "rawsymlink" => {
                let path = root.join(raw(words[2]));
                parent(&path);
                std::os::unix::fs::symlink(raw(words[1]), path).unwrap();
            }
            "socket" => {
                parent(&at(1));
                // The socket file stays when the listener is dropped.
                drop(std::os::unix::net::UnixListener::bind(at(1)).unwrap());
            }
            other => panic!("{}: unknown setup action {other}", case.display()),
        }
    }
}

/// `word` with each `\xHH` read as that byte.
fn raw(word: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = word.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (
            b[i],
            b.get(i + 1),
            hex.and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'\\', Some(b'x'), Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// What `COPY . /ctx` left in an image, the folder itself included, one line per entry.
fn files_under_ctx(image: &str) -> BTreeMap<String, String> {
    files_under(image, "ctx", true)
}

/// The service's context folder and Dockerfile, as the reference compose resolves them.
fn resolved_build(compose: &Path, project_dir: &Path, project: &str) -> (PathBuf, Dockerfile) {
    let out = Command::new(compose)
        .args(["-p", project, "config", "--format", "json"])
        .current_dir(project_dir)
        .output()
        .expect("docker compose runs");
    assert!(
        out.status.success(),
        "docker compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let build = &config["services"]["app"]["build"];
    let context = PathBuf::from(build["context"].as_str().expect("a local context"));
    let dockerfile = match build["dockerfile_inline"].as_str() {
        Some(text) => Dockerfile::Inline(text.to_string()),
        None => {
            Dockerfile::Path(context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile")))
        }
    };
    (context, dockerfile)
}

fn compose_build(
    compose: &Path,
    project_dir: &Path,
    project: &str,
    builder: BuilderKind,
) -> Result<(), String> {
    let buildkit = if builder == BuilderKind::BuildKit {
        "1"
    } else {
        "0"
    };
    let out = Command::new(compose)
        // Never from the cache: BuildKit's cache keys leave out some of what is compared
        // (owners), so a cached layer could hide a difference.
        .args(["-p", project, "build", "--progress", "plain", "--no-cache"])
        .env("DOCKER_BUILDKIT", buildkit)
        .current_dir(project_dir)
        .output()
        .expect("docker compose runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker compose build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn wharf_build(
    rt: &tokio::runtime::Runtime,
    context: &Path,
    dockerfile: &Dockerfile,
    tag: &str,
    builder: BuilderKind,
) -> Result<(), String> {
    rt.block_on(async {
        let (docker, _) = wharf_builder::daemon::connect()
            .await
            .map_err(|e| format!("daemon: {e}"))?;
        let ctx = Context::prepare(context, Some(dockerfile), builder)
            .map_err(|e| format!("context: {e}"))?;
        let request = BuildRequest {
            tag: tag.to_string(),
            dockerfile: ctx.dockerfile().to_string(),
            builder,
            no_cache: true,
            ..Default::default()
        };
        let mut log = Vec::new();
        wharf_builder::build::build(&docker, &request, &ctx, |l| log.push(l.to_string()))
            .await
            .map_err(|e| format!("wharf build failed: {e}\n{}", log.join("\n")))
    })
}

fn diff(reference: &BTreeMap<String, String>, wharf: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want) in reference {
        match wharf.get(path) {
            None => out.push(format!("  missing in wharf's image: {path}  ({want})")),
            Some(got) if got != want => out.push(format!(
                "  {path}\n      compose: {want}\n      wharf:   {got}"
            )),
            Some(_) => {}
        }
    }
    for (path, got) in wharf {
        if !reference.contains_key(path) {
            out.push(format!("  extra in wharf's image: {path}  ({got})"));
        }
    }
    out
}

#[test]
fn context_corpus_matches_docker_compose_buildkit() {
    run_corpus(BuilderKind::BuildKit);
}

#[test]
fn context_corpus_matches_docker_compose_classic() {
    run_corpus(BuilderKind::Classic);
}

fn run_corpus(builder: BuilderKind) {
    let bed = bed();
    let label = match builder {
        BuilderKind::BuildKit => "buildkit",
        BuilderKind::Classic => "classic",
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cases: Vec<PathBuf> = fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("project").is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "the corpus has only {} cases",
        cases.len()
    );
    let only = std::env::var("WHARF_CONTEXT_CASE").ok();

    let mut failures = Vec::new();
    let mut passed = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(case, tmp.path());
        let _ = fs::remove_file(tmp.path().join("setup"));
        setup(case, tmp.path());
        let project_dir = tmp.path().join("project");
        let project = unique(&format!("ctx-{label}-{name}")).to_lowercase();
        let reference_image = format!("{project}-app");
        let wharf_image = format!("{project}-wharf");

        let unsupported = fs::read_to_string(case.join("classic-unsupported")).ok();
        let outcome = (|| {
            if let (BuilderKind::Classic, Some(why)) = (builder, &unsupported) {
                return match compose_build(&bed.compose, &project_dir, &project, builder) {
                    Err(_) => Ok(()),
                    Ok(()) => Err(format!(
                        "docker compose now builds this case with the classic builder; \
                         remove classic-unsupported ({})",
                        why.trim()
                    )),
                };
            }
            compose_build(&bed.compose, &project_dir, &project, builder)?;
            let (context, dockerfile) = resolved_build(&bed.compose, &project_dir, &project);
            wharf_build(&rt, &context, &dockerfile, &wharf_image, builder)?;
            let reference = files_under_ctx(&reference_image);
            let wharf = files_under_ctx(&wharf_image);
            assert!(
                !reference.is_empty(),
                "{name}: the reference image has no /ctx"
            );
            let d = diff(&reference, &wharf);
            if d.is_empty() {
                Ok(())
            } else {
                Err(d.join("\n"))
            }
        })();
        let _ = Command::new("docker")
            .args(["rmi", "-f", &reference_image, &wharf_image])
            .output();
        match outcome {
            Ok(()) => {
                passed += 1;
                eprintln!("context case {name} ({label}): ok");
            }
            Err(e) => {
                eprintln!("context case {name} ({label}): FAILED\n{e}");
                failures.push(format!("{name}:\n{e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{label}: {passed} context cases passed, {} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
