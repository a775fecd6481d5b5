//! Build fidelity: the images `wharf build` makes must be the images `docker compose build`
//! makes, on the same engine.
//!
//! Each case of `tests/build-fidelity/` (its README describes the format) is a small compose
//! project. It is built by the reference docker compose v2 of the bed (`WHARF_TEST_COMPOSE -p
//! NAME build`) and then by wharf (`wharf -p NAME build`), on the same engine, one after the
//! other; after each build the images the run made are read and removed. Compared:
//!
//! - which images exist (every name a case builds holds its unique project name);
//! - per image: the config (Env, Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts,
//!   Volumes), the platform (os, architecture, variant), the history as the image's config
//!   records it (each step's created_by, comment, and whether it made a layer) and the file
//!   list of a container made from it (path, type, mode, owner, size, content hash, link
//!   target).
//!
//! Normalised, because they must differ: the labels wharf adds that compose does not write
//! (`org.opencontainers.image.*`, `dev.wharf.inputs`: compared when the compose image has the
//! label too, i.e. the user set it), the value of `com.docker.compose.version` (compose's
//! version there, `wharf <version>` here — checked as such), and timestamps (never read).
//!
//! A case may say that on some engine the reference refuses where wharf builds (named
//! contexts on Docker 20.10, whose Dockerfile frontend lacks them and which wharf resolves
//! itself), that both refuse (heredocs on Docker 20.10's frontend), that wharf refuses what
//! the reference builds, or that both build other images (a multi-platform image: one per
//! platform for wharf); the case says why.
//!
//! A build that fails on the containerd image store's storage race (a snapshot removed under
//! a running build; see `storage_race`) is run once more, and the run says so: the engine is
//! shared with every other test of the bed, and its race is neither tool's doing.
//!
//! The suite runs on the bed's engine (Docker 20.10) and on a Docker 26 engine with the
//! containerd image store, named by `WHARF_TEST_DOCKER26_HOST`: without that variable the
//! second test fails, it never skips.

use crate::support::{bed, wharf_bin};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The engine a run builds on.
struct Engine {
    /// `DOCKER_HOST` for every tool, or the bed's own (the environment's) when `None`.
    host: Option<String>,
    /// The daemon's version, e.g. `20.10.24+dfsg1`.
    version: String,
}

impl Engine {
    fn new(host: Option<String>) -> Engine {
        let mut e = Engine {
            host,
            version: String::new(),
        };
        let out = e
            .docker(&["version", "--format", "{{.Server.Version}}"])
            .output()
            .expect("the docker CLI runs");
        assert!(
            out.status.success(),
            "the engine at {} does not answer: {}",
            e.host.as_deref().unwrap_or("the bed's DOCKER_HOST"),
            text(&out.stderr)
        );
        e.version = text(&out.stdout).trim().to_string();
        e
    }

    /// Whether `key` (`20.10`, `26`, or `*` for any) names this engine's version.
    fn is(&self, key: &str) -> bool {
        key == "*" || self.version == key || self.version.starts_with(&format!("{key}."))
    }

    /// The docker CLI, against this engine.
    fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args);
        if let Some(h) = &self.host {
            c.env("DOCKER_HOST", h);
        }
        c
    }

    fn docker_ok(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = self.docker(args).output().expect("the docker CLI runs");
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!(
                "docker {}: {}",
                args.join(" "),
                text(&out.stderr).trim()
            ))
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One case folder and what its `case.json` says.
struct Case {
    name: String,
    dir: PathBuf,
    /// Project options for both tools, before `build`.
    args: Vec<String>,
    /// Services named after `build`.
    services: Vec<String>,
    /// Variables added to both tools' environment.
    env: BTreeMap<String, String>,
    /// Run both with an SSH agent holding a fresh key (`SSH_AUTH_SOCK`).
    ssh_agent: bool,
    /// Per engine (a version prefix): what differs there, and why.
    engines: BTreeMap<String, EngineNote>,
    /// Image (`<project>` for the project name) → the one compared part that differs on
    /// purpose (`history`), with the README saying why. It must differ: a stale entry fails.
    known_differences: BTreeMap<String, String>,
}

enum EngineNote {
    /// The reference fails with this text; wharf builds these images (`<project>` stands for
    /// the project's name).
    ReferenceRefuses { text: String, images: Vec<String> },
    /// Both build, but other images: wharf these (a multi-platform image, which wharf keeps
    /// as one image per platform where the reference stores one under one name).
    BothBuildOthers { images: Vec<String> },
    /// Both fail, the reference with this text, wharf with its own (the same when `None`:
    /// the daemon's words).
    BothRefuse {
        text: String,
        wharf_text: Option<String>,
    },
    /// The reference builds, wharf refuses with this text: a documented difference.
    WharfRefuses { text: String },
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build-fidelity");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read_to_string(dir.join("case.json")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{name}/case.json: {e}"));
        let strings = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().expect("strings").to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(
            v.get("about").and_then(|a| a.as_str()).is_some(),
            "{name}/case.json says what it is about"
        );
        let env = v
            .get("env")
            .and_then(|e| e.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("strings").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut engines = BTreeMap::new();
        if let Some(m) = v.get("engines").and_then(|e| e.as_object()) {
            for (engine, note) in m {
                assert!(
                    note.get("why").and_then(|w| w.as_str()).is_some(),
                    "{name}: engine {engine} says why"
                );
                let field = |k: &str| note.get(k).and_then(|t| t.as_str()).map(String::from);
                let images = || -> Vec<String> {
                    note.get("images")
                        .and_then(|i| i.as_array())
                        .unwrap_or_else(|| {
                            panic!("{name}: engine {engine}: the images wharf builds")
                        })
                        .iter()
                        .map(|i| i.as_str().expect("strings").to_string())
                        .collect()
                };
                let n = match (
                    field("reference_refuses"),
                    field("both_refuse"),
                    field("wharf_refuses"),
                ) {
                    (None, None, None) if note.get("both_build_others").is_some() => {
                        EngineNote::BothBuildOthers { images: images() }
                    }
                    (Some(text), None, None) => EngineNote::ReferenceRefuses {
                        text,
                        images: note
                            .get("images")
                            .and_then(|i| i.as_array())
                            .unwrap_or_else(|| {
                                panic!("{name}: engine {engine}: the images wharf builds")
                            })
                            .iter()
                            .map(|i| i.as_str().expect("strings").to_string())
                            .collect(),
                    },
                    (None, Some(text), None) => EngineNote::BothRefuse {
                        text,
                        wharf_text: field("wharf"),
                    },
                    (None, None, Some(text)) => EngineNote::WharfRefuses { text },
                    _ => panic!(
                        "{name}: engine {engine}: one of reference_refuses, both_refuse, wharf_refuses, both_build_others"
                    ),
                };
                engines.insert(engine.clone(), n);
            }
        }
        let mut known_differences = BTreeMap::new();
        for k in v
            .get("known_differences")
            .and_then(|k| k.as_array())
            .into_iter()
            .flatten()
        {
            let field = |f: &str| {
                k.get(f)
                    .and_then(|x| x.as_str())
                    .unwrap_or_else(|| panic!("{name}: known_differences entries name {f}"))
                    .to_string()
            };
            field("why");
            assert_eq!(field("field"), "history", "{name}: only history may differ");
            known_differences.insert(field("image"), field("field"));
        }
        out.push(Case {
            known_differences,
            args: strings("args"),
            services: strings("services"),
            env,
            ssh_agent: v.get("ssh_agent").and_then(|s| s.as_bool()) == Some(true),
            engines,
            name,
            dir,
        });
    }
    assert!(!out.is_empty(), "no cases in {}", root.display());
    out
}

/// An SSH agent holding one fresh key, stopped when dropped.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent starts (Debian's openssh-client)");
        for _ in 0..100 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let key = dir.path().join("id");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "fidelity", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen runs");
        assert!(made.success());
        let added = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .expect("ssh-add runs");
        assert!(added.status.success(), "{}", text(&added.stderr));
        Agent {
            child,
            socket,
            _dir: dir,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one image is, as compared.
#[derive(Debug, Clone, PartialEq)]
struct Image {
    config: BTreeMap<&'static str, serde_json::Value>,
    labels: BTreeMap<String, String>,
    platform: String,
    history: Vec<String>,
    files: BTreeMap<String, String>,
}

const CONFIG_FIELDS: [&str; 7] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
];

/// Labels wharf writes that docker compose does not.
fn added_by_wharf(label: &str) -> bool {
    label.starts_with("org.opencontainers.image.") || label.starts_with("dev.wharf.")
}

const VERSION_LABEL: &str = "com.docker.compose.version";

fn read_image(engine: &Engine, name: &str) -> Result<Image, String> {
    let inspect: serde_json::Value =
        serde_json::from_slice(&engine.docker_ok(&["image", "inspect", name])?)
            .map_err(|e| format!("docker image inspect {name}: {e}"))?;
    let inspect = &inspect[0];
    let cfg = &inspect["Config"];
    let config = CONFIG_FIELDS
        .iter()
        .map(|f| {
            // An empty list or map and none at all mean the same to the engine.
            let v = match &cfg[*f] {
                serde_json::Value::Array(a) if a.is_empty() => serde_json::Value::Null,
                serde_json::Value::Object(m) if m.is_empty() => serde_json::Value::Null,
                serde_json::Value::String(s) if s.is_empty() => serde_json::Value::Null,
                v => v.clone(),
            };
            (*f, v)
        })
        .collect();
    let labels = cfg["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let platform = format!(
        "{}/{}{}",
        inspect["Os"].as_str().unwrap_or_default(),
        inspect["Architecture"].as_str().unwrap_or_default(),
        inspect["Variant"]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(|v| format!("/{v}"))
            .unwrap_or_default()
    );
    Ok(Image {
        config,
        labels,
        platform,
        history: history_of(engine, name)?,
        files: files_of(engine, name)?,
    })
}

/// The files of a tar stream of up to 1 MiB (configs and manifests; layers are skipped), read
/// to its end.
fn small_files(stream: impl Read) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut small = BTreeMap::new();
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() && entry.size() <= 1 << 20 {
            let path = entry.path()?.to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            small.insert(path, bytes);
        }
    }
    // The archive ends before the stream does (padding): read it all, or the writer fails on
    // a closed pipe.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    Ok(small)
}

/// The image's history as its config records it (`docker save`): each step's created_by,
/// comment and whether it made a layer. (The history endpoint of Docker 26 with the
/// containerd store fails for an image of another platform than the engine's.)
fn history_of(engine: &Engine, image: &str) -> Result<Vec<String>, String> {
    let mut child = engine
        .docker(&["save", image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker save runs");
    let small = small_files(child.stdout.take().unwrap());
    let out = child.wait_with_output().expect("docker save ends");
    if !out.status.success() {
        return Err(format!("docker save {image}: {}", text(&out.stderr).trim()));
    }
    let small = small.map_err(|e| format!("docker save {image}: {e}"))?;
    let manifest: serde_json::Value = small
        .get("manifest.json")
        .and_then(|m| serde_json::from_slice(m).ok())
        .ok_or_else(|| format!("docker save {image}: no manifest.json"))?;
    let config_path = manifest[0]["Config"]
        .as_str()
        .ok_or_else(|| format!("docker save {image}: manifest.json names no config"))?;
    let config: serde_json::Value = small
        .get(config_path)
        .and_then(|c| serde_json::from_slice(c).ok())
        .ok_or_else(|| format!("docker save {image}: no config {config_path}"))?;
    Ok(config["history"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|h| {
                    format!(
                        "{} | {} | {}",
                        h["created_by"].as_str().unwrap_or_default(),
                        h["comment"].as_str().unwrap_or_default(),
                        if h["empty_layer"].as_bool() == Some(true) {
                            "no layer"
                        } else {
                            "layer"
                        }
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The files of a container made from `image` (never started): path → type, mode, owner,
/// size, content hash or link target.
fn files_of(engine: &Engine, image: &str) -> Result<BTreeMap<String, String>, String> {
    let id = text(&engine.docker_ok(&["create", image, "/wharf-fidelity-never-run"])?)
        .trim()
        .to_string();
    let mut child = engine
        .docker(&["export", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker export runs");
    let mut out = BTreeMap::new();
    {
        let mut archive = tar::Archive::new(child.stdout.take().unwrap());
        for entry in archive.entries().expect("a tar stream") {
            let mut entry = entry.expect("a tar entry");
            let h = entry.header().clone();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let kind = h.entry_type();
            let what = if kind.is_file() {
                use sha2::Digest;
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
            } else {
                entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| format!("-> {}", l.to_string_lossy()))
                    .unwrap_or_default()
            };
            out.insert(
                path,
                format!(
                    "{:?} {:o} {}:{} {} {what}",
                    kind,
                    h.mode().unwrap_or(0),
                    h.uid().unwrap_or(0),
                    h.gid().unwrap_or(0),
                    h.size().unwrap_or(0),
                ),
            );
        }
        let _ = std::io::copy(&mut archive.into_inner(), &mut std::io::sink());
    }
    let status = child.wait().expect("docker export ends");
    engine.docker_ok(&["rm", "-f", &id])?;
    if !status.success() {
        return Err(format!("docker export of {image} failed"));
    }
    Ok(out)
}

/// The images whose names hold `token`, name → id.
fn images_of(engine: &Engine, token: &str) -> BTreeMap<String, String> {
    text(
        &engine
            .docker_ok(&[
                "images",
                "--no-trunc",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ])
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .filter(|(name, _)| name.contains(token))
    .map(|(n, id)| (n.to_string(), id.to_string()))
    .collect()
}

fn remove_images(engine: &Engine, names: impl IntoIterator<Item = String>) {
    let names: Vec<String> = names.into_iter().collect();
    if names.is_empty() {
        return;
    }
    let mut args = vec!["rmi", "-f"];
    args.extend(names.iter().map(String::as_str));
    let _ = engine.docker(&args).output();
}

/// Which tool builds.
#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Compose,
    Wharf,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Compose => "the reference",
            Tool::Wharf => "wharf",
        }
    }
}

/// Runs `tool` on `case` as project `project` (in a copy of the case folder) on `engine`.
fn build(
    tool: Tool,
    case: &Case,
    dir: &Path,
    project: &str,
    engine: &Engine,
    agent: Option<&Agent>,
) -> Output {
    let mut c = match tool {
        Tool::Compose => Command::new(bed().compose),
        Tool::Wharf => Command::new(wharf_bin()),
    };
    c.current_dir(dir).env_clear();
    for keep in [
        "PATH",
        "HOME",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        if let Some(v) = std::env::var_os(keep) {
            c.env(keep, v);
        }
    }
    if let Some(h) = &engine.host {
        c.env("DOCKER_HOST", h);
    }
    c.env("DOCKER_BUILDKIT", "1").env("FID", project);
    if let Some(a) = agent {
        c.env("SSH_AUTH_SOCK", &a.socket);
    }
    c.envs(&case.env);
    c.arg("-p").arg(project).args(&case.args).arg("build");
    if tool == Tool::Wharf {
        c.args(["--progress", "plain"]);
    }
    c.args(&case.services);
    c.output().expect("the build runs")
}

/// Copies the case folder (its files only, links kept) to a scratch folder.
fn copy_case(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success());
}

/// The differences between the reference's image and wharf's, one line each.
fn differences(name: &str, reference: &Image, ours: &Image) -> Vec<String> {
    let mut out = Vec::new();
    for f in CONFIG_FIELDS {
        if reference.config[f] != ours.config[f] {
            out.push(format!(
                "{name}: Config.{f}: reference {} vs wharf {}",
                reference.config[f], ours.config[f]
            ));
        }
    }
    let keys: BTreeSet<&String> = reference.labels.keys().chain(ours.labels.keys()).collect();
    for k in keys {
        let (r, w) = (reference.labels.get(k), ours.labels.get(k));
        match (r, w) {
            (None, Some(_)) if added_by_wharf(k) => {}
            (Some(r), Some(w)) if k == VERSION_LABEL => {
                let named = w.starts_with("wharf ") && !r.starts_with("wharf");
                if !named {
                    out.push(format!(
                        "{name}: label {k}: reference {r:?}, wharf {w:?} (wharf must name itself)"
                    ));
                }
            }
            (r, w) if r != w => {
                out.push(format!("{name}: label {k}: reference {r:?} vs wharf {w:?}"))
            }
            _ => {}
        }
    }
    if reference.platform != ours.platform {
        out.push(format!(
            "{name}: platform: reference {} vs wharf {}",
            reference.platform, ours.platform
        ));
    }
    if reference.history != ours.history {
        out.push(format!(
            "{name}: history:\n    reference: {:?}\n    wharf:     {:?}",
            reference.history, ours.history
        ));
    }
    let paths: BTreeSet<&String> = reference.files.keys().chain(ours.files.keys()).collect();
    let mut file_diffs = 0;
    for p in paths {
        let (r, w) = (reference.files.get(p), ours.files.get(p));
        if r != w {
            file_diffs += 1;
            if file_diffs <= 10 {
                out.push(format!(
                    "{name}: file {p}: reference {} vs wharf {}",
                    r.map_or("(none)", String::as_str),
                    w.map_or("(none)", String::as_str)
                ));
            }
        }
    }
    if file_diffs > 10 {
        out.push(format!(
            "{name}: … {} more file differences",
            file_diffs - 10
        ));
    }
    out
}

/// Builds one case with both tools on `engine`; `Err` lists what differs.
fn run_case(case: &Case, engine: &Engine) -> Result<String, Vec<String>> {
    let project = format!(
        "fid{}-{}",
        std::process::id(),
        case.name.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let note = case
        .engines
        .iter()
        .find(|(k, _)| engine.is(k))
        .map(|(_, n)| n);
    let agent = case.ssh_agent.then(Agent::start);
    let mut built = Vec::new();
    for tool in [Tool::Compose, Tool::Wharf] {
        let dir = tempfile::tempdir().unwrap();
        copy_case(&case.dir, dir.path());
        let mut out = build(tool, case, dir.path(), &project, engine, agent.as_ref());
        if storage_race(&out) {
            // Run again once, and say so: the race is the engine's, not the tool's.
            println!(
                "     {} on {}: the engine lost a snapshot mid-build, run again:\n{}",
                tool.name(),
                case.name,
                last_lines(&out.stderr, 3)
            );
            remove_images(engine, images_of(engine, &project).into_keys());
            out = build(tool, case, dir.path(), &project, engine, agent.as_ref());
        }
        let images = images_of(engine, &project);
        let read: Result<BTreeMap<String, Image>, String> = if out.status.success() {
            images
                .keys()
                .map(|n| Ok((n.clone(), read_image(engine, n)?)))
                .collect()
        } else {
            Ok(BTreeMap::new())
        };
        remove_images(engine, images.into_keys());
        match read {
            Ok(read) => built.push((out, read)),
            Err(e) => return Err(vec![format!("reading the images of the run: {e}")]),
        }
    }
    let (reference_out, reference) = &built[0];
    let (wharf_out, ours) = &built[1];
    let failed = |who: &str, o: &Output| {
        format!(
            "{who} failed ({}):\n{}",
            o.status,
            last_lines(&o.stderr, 15)
        )
    };
    // Where the case says the reference does something else, wharf builds exactly the images
    // it names (`<project>` stands for the project's name).
    let wharf_builds = |images: &[String]| -> Option<String> {
        let want: BTreeSet<String> = images
            .iter()
            .map(|i| i.replace("<project>", &project))
            .collect();
        let got: BTreeSet<String> = ours.keys().cloned().collect();
        if !wharf_out.status.success() {
            Some(failed("wharf", wharf_out))
        } else if got != want {
            Some(format!("wharf built {got:?}, not {want:?}"))
        } else {
            None
        }
    };
    match note {
        Some(EngineNote::BothRefuse {
            text: expected,
            wharf_text,
        }) => {
            let wharf_expected = wharf_text.as_deref().unwrap_or(expected);
            let mut problems = Vec::new();
            if reference_out.status.success() || !text(&reference_out.stderr).contains(expected) {
                problems.push(format!(
                    "the reference was expected to refuse with {expected:?}: {}",
                    failed("reference", reference_out)
                ));
            }
            if wharf_out.status.success() {
                problems.push("wharf built what the reference refuses".into());
            } else if !text(&wharf_out.stderr).contains(wharf_expected) {
                problems.push(format!(
                    "wharf refused, but not with {wharf_expected:?}: {}",
                    failed("wharf", wharf_out)
                ));
            }
            return outcome(problems, "both refuse, as the case says");
        }
        Some(EngineNote::ReferenceRefuses {
            text: expected,
            images,
        }) => {
            let mut problems = Vec::new();
            if reference_out.status.success() || !text(&reference_out.stderr).contains(expected) {
                problems.push(format!(
                    "the reference was expected to refuse with {expected:?}: {}",
                    failed("reference", reference_out)
                ));
            }
            problems.extend(wharf_builds(images));
            return outcome(
                problems,
                format!(
                    "the reference refuses on this engine, wharf builds {} image(s)",
                    ours.len()
                ),
            );
        }
        Some(EngineNote::BothBuildOthers { images }) => {
            let mut problems = Vec::new();
            if !reference_out.status.success() {
                problems.push(failed("reference", reference_out));
            }
            problems.extend(wharf_builds(images));
            return outcome(
                problems,
                format!(
                    "both build; wharf {} image(s), as the case says",
                    ours.len()
                ),
            );
        }
        Some(EngineNote::WharfRefuses { text: expected }) => {
            let mut problems = Vec::new();
            if !reference_out.status.success() {
                problems.push(failed("reference", reference_out));
            } else if reference.is_empty() {
                problems.push("the reference built no image".into());
            }
            if wharf_out.status.success() || !text(&wharf_out.stderr).contains(expected) {
                problems.push(format!(
                    "wharf was expected to refuse with {expected:?}: {}",
                    failed("wharf", wharf_out)
                ));
            }
            return outcome(
                problems,
                "the reference builds, wharf refuses, as the case says",
            );
        }
        None => {}
    }
    if !reference_out.status.success() {
        return Err(vec![failed("reference", reference_out)]);
    }
    if !wharf_out.status.success() {
        return Err(vec![failed("wharf", wharf_out)]);
    }
    let mut problems = Vec::new();
    let names: BTreeSet<&String> = reference.keys().collect();
    let ours_names: BTreeSet<&String> = ours.keys().collect();
    if names != ours_names {
        problems.push(format!(
            "images: reference {names:?} vs wharf {ours_names:?}"
        ));
    }
    if names.is_empty() {
        problems.push("the reference built no image with the project's name".into());
    }
    for name in names.intersection(&ours_names) {
        let shown = name.replace(&project, "<project>");
        let (reference, ours) = (&reference[*name], &ours[*name]);
        if case.known_differences.contains_key(&shown) {
            if reference.history == ours.history {
                problems.push(format!(
                    "{shown}: the known difference in history is gone: remove it from the case"
                ));
            }
            let same_history = Image {
                history: reference.history.clone(),
                ..ours.clone()
            };
            problems.extend(differences(&shown, reference, &same_history));
        } else {
            problems.extend(differences(&shown, reference, ours));
        }
    }
    outcome(problems, format!("{} image(s) alike", names.len()))
}

/// Whether a failed build failed on BuildKit's storage race on the containerd image store: a
/// snapshot or the solve's own ref removed under a running build while other builds and image
/// removals run on the same engine (moby/buildkit#6521, #6977: "failed to solve: not found",
/// "snapshot … does not exist: not found", or the export's own step failing with a bare
/// "exporting to image: not found", as wharf prints it after its own runs again). Every test
/// of the bed shares the engine, so either tool can meet it; a missing file or image in a
/// case fails with its name (`"/x": not found`, `…: pull access denied`) and is never taken
/// for it.
fn storage_race(out: &Output) -> bool {
    !out.status.success()
        && text(&out.stderr).lines().any(|l| {
            let l = l.trim();
            l.ends_with("failed to solve: not found")
                || l.ends_with("] exporting to image: not found")
                || (l.contains("snapshot") && l.ends_with("does not exist: not found"))
        })
}

/// The last `n` lines of a tool's error output.
fn last_lines(stderr: &[u8], n: usize) -> String {
    let text = text(stderr);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A case's result: `ok` when nothing is wrong, else every problem found.
fn outcome(problems: Vec<String>, ok: impl Into<String>) -> Result<String, Vec<String>> {
    if problems.is_empty() {
        Ok(ok.into())
    } else {
        Err(problems)
    }
}

fn suite(engine: Engine) {
    bed();
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        match run_case(case, &engine) {
            Ok(summary) => println!("ok   {:<32} {summary}", case.name),
            Err(problems) => {
                println!("FAIL {}", case.name);
                for p in &problems {
                    println!("     {p}");
                }
                failures.push(format!("{}:\n  {}", case.name, problems.join("\n  ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "on Docker {}, {} of {} case(s) differ from docker compose:\n{}",
        engine.version,
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn wharf_builds_what_docker_compose_builds_on_the_beds_engine() {
    suite(Engine::new(None));
}

/// The second engine of the bed: Docker 26 with the containerd image store.
#[test]
fn wharf_builds_what_docker_compose_builds_on_docker_26_with_containerd() {
    let host = match std::env::var("WHARF_TEST_DOCKER26_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => panic!(
            "WHARF_TEST_DOCKER26_HOST is not set: this test needs the bed's Docker 26 engine \
             (containerd image store), as DOCKER_HOST would name it; run `scripts/testbed up` \
             and `eval \"$(scripts/testbed env)\"`"
        ),
    };
    let engine = Engine::new(Some(host));
    let major: u32 = engine
        .version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 26,
        "WHARF_TEST_DOCKER26_HOST names Docker {}, not 26 or later",
        engine.version
    );
    suite(engine);
}
