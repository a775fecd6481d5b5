//! The release engine's guarantees, through the binary, with an HTTP fault proxy in front of the
//! bed's plain registry: transient faults are retried to success; a permanently refused
//! identity tag moves no moving tag; a permanently refused moving tag puts back every moving
//! tag the run moved; a registry that never answers ends within its deadlines; Ctrl-C during
//! phase 2 restores. Each checks the registry itself (not through the proxy) for where every
//! `latest` points.

use crate::support::registry_proxy::{Fault, Method, RegistryProxy};
use crate::support::{bed, fake_sha, run, served, stderr, unique, wharf, wharf_on, write, Engine};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [&str; 4] = ["api", "web", "worker", "cron"];

/// Four services, each its own small image from the bed's base.
fn project(dir: &Path, base: &str) {
    let mut compose = String::from("services:\n");
    for s in SERVICES {
        compose.push_str(&format!("  {s}:\n    build: ./{s}\n"));
        write(
            dir,
            &format!("{s}/Dockerfile"),
            &format!("FROM {base}\nCOPY stamp /stamp\n"),
        );
    }
    write(dir, "compose.yaml", &compose);
    restamp(dir);
}

/// New content everywhere: the next release builds four new images.
fn restamp(dir: &Path) {
    for s in SERVICES {
        write(dir, &format!("{s}/stamp"), &unique(s));
    }
}

/// `build --push` of commit `sha` to `registry`, repositories `<prefix>-<service>`.
fn release_command(engine: Engine, dir: &Path, registry: &str, prefix: &str, sha: &str) -> Command {
    let mut c = wharf_on(engine, dir, sha);
    c.args(["build", "--push", "--registry", registry])
        .args(["--repository", &format!("{prefix}-{{service}}")])
        .args(["--tag", "{git_sha}", "--tag", "latest"]);
    c
}

/// [`release_command`] with `extra` arguments, run to its end.
fn release(
    engine: Engine,
    dir: &Path,
    registry: &str,
    prefix: &str,
    sha: &str,
    extra: &[&str],
) -> Output {
    run(release_command(engine, dir, registry, prefix, sha).args(extra))
}

/// What `reference` names in the registry itself (asked directly, not through the proxy).
fn served_now(reference: &str) -> Option<String> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(served(reference, None))
}

/// What each service's `latest` names in the registry itself.
fn latest(registry: &str, prefix: &str) -> BTreeMap<&'static str, Option<String>> {
    SERVICES
        .iter()
        .map(|s| (*s, served_now(&format!("{registry}/{prefix}-{s}:latest"))))
        .collect()
}

/// A first release straight to the registry: the "old release" the faulty one must leave in
/// place.
fn first_release(
    engine: Engine,
    dir: &Path,
    plain: &str,
    prefix: &str,
) -> BTreeMap<&'static str, Option<String>> {
    let out = release(engine, dir, plain, prefix, &fake_sha(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = latest(plain, prefix);
    assert!(before.values().all(Option::is_some), "{before:?}");
    restamp(dir);
    before
}

/// The project (under a new prefix made of `name`) after its [`first_release`], and a proxy
/// in front of the plain registry to stage the next release's faults on.
struct Released {
    dir: tempfile::TempDir,
    prefix: String,
    /// Each service's `latest` after the first release.
    before: BTreeMap<&'static str, Option<String>>,
    proxy: RegistryProxy,
}

fn released_once(engine: Engine, name: &str) -> Released {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &bed.base_image);
    let prefix = unique(name);
    let before = first_release(engine, dir.path(), &bed.plain_registry, &prefix);
    let proxy = RegistryProxy::start(&bed.plain_registry);
    Released {
        dir,
        prefix,
        before,
        proxy,
    }
}

#[test]
fn transient_faults_and_dropped_connections_are_retried_to_success_on_docker20() {
    transient_faults_and_dropped_connections_are_retried_to_success(Engine::Docker20);
}

#[test]
fn transient_faults_and_dropped_connections_are_retried_to_success_on_docker26() {
    transient_faults_and_dropped_connections_are_retried_to_success(Engine::Docker26);
}

fn transient_faults_and_dropped_connections_are_retried_to_success(engine: Engine) {
    let bed = bed();
    let proxy = RegistryProxy::start(&bed.plain_registry);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &bed.base_image);
    let prefix = unique("faults/transient");
    let unavailable = proxy.fault(
        Method::PUT,
        r"/manifests/latest$",
        Fault::Unavailable { times: 2 },
    );
    let dropped = proxy.fault(
        Method::PUT,
        r"/manifests/[0-9a-f]{40}$",
        Fault::Drop { times: 1 },
    );
    let out = release(
        engine,
        dir.path(),
        &proxy.addr,
        &prefix,
        &fake_sha(),
        &["--progress", "plain"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(unavailable.hits(), 2);
    assert_eq!(dropped.hits(), 1);
    assert!(stderr(&out).contains("retrying"), "{}", stderr(&out));
    assert!(latest(&bed.plain_registry, &prefix)
        .values()
        .all(Option::is_some));
}

#[test]
fn a_permanently_refused_identity_tag_moves_no_moving_tag_on_docker20() {
    a_permanently_refused_identity_tag_moves_no_moving_tag(Engine::Docker20);
}

#[test]
fn a_permanently_refused_identity_tag_moves_no_moving_tag_on_docker26() {
    a_permanently_refused_identity_tag_moves_no_moving_tag(Engine::Docker26);
}

fn a_permanently_refused_identity_tag_moves_no_moving_tag(engine: Engine) {
    let bed = bed();
    let Released {
        dir,
        prefix,
        before,
        proxy,
    } = released_once(engine, "faults/identity");
    let sha = fake_sha();
    let refused = proxy.fault(
        Method::PUT,
        &format!(r"/{prefix}-web/manifests/{sha}$"),
        Fault::deny(),
    );
    let out = release(engine, dir.path(), &proxy.addr, &prefix, &sha, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(refused.hits() >= 1);
    let err = stderr(&out);
    assert!(
        err.contains("no moving tag was moved") && err.contains("`web`"),
        "{err}"
    );
    assert!(
        proxy
            .forwarded(&Method::PUT, "/manifests/latest")
            .is_empty(),
        "no moving tag reached the registry"
    );
    assert_eq!(latest(&bed.plain_registry, &prefix), before);
}

#[test]
fn a_permanently_refused_moving_tag_puts_back_every_moving_tag_moved_on_docker20() {
    a_permanently_refused_moving_tag_puts_back_every_moving_tag_moved(Engine::Docker20);
}

#[test]
fn a_permanently_refused_moving_tag_puts_back_every_moving_tag_moved_on_docker26() {
    a_permanently_refused_moving_tag_puts_back_every_moving_tag_moved(Engine::Docker26);
}

fn a_permanently_refused_moving_tag_puts_back_every_moving_tag_moved(engine: Engine) {
    let bed = bed();
    let Released {
        dir,
        prefix,
        before,
        proxy,
    } = released_once(engine, "faults/moving");
    let refused = proxy.fault(
        Method::PUT,
        &format!(r"/{prefix}-web/manifests/latest$"),
        Fault::refuse_tag(),
    );
    let sha = fake_sha();
    let out = release(
        engine,
        dir.path(),
        &proxy.addr,
        &prefix,
        &sha,
        &["--progress", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(refused.hits() >= 1);
    let err = stderr(&out);
    assert!(err.contains("`web`"), "{err}");
    assert!(
        err.contains("the registry holds the whole previous release"),
        "{err}"
    );
    // The registry itself: every `latest` names the first release, every identity tag the new.
    assert_eq!(latest(&bed.plain_registry, &prefix), before);
    for s in SERVICES {
        assert!(served_now(&format!("{}/{prefix}-{s}:{sha}", bed.plain_registry)).is_some());
    }
    // Each moving tag the run moved was reported put back.
    let moved = proxy.forwarded(&Method::PUT, "/manifests/latest").len();
    let restored = err
        .lines()
        .filter(|l| l.contains(r#""event":"restored""#))
        .count();
    assert!(moved >= restored, "{err}");
    // Moves that landed before the refusal came back with a restore of the same tag.
    assert_eq!(
        restored * 2,
        moved,
        "each moved tag PUT again to put it back: {err}"
    );
}

#[test]
fn a_registry_that_never_answers_ends_within_its_deadline_and_builds_nothing() {
    let bed = bed();
    let proxy = RegistryProxy::start(&bed.plain_registry);
    // Every request for a repository hangs; the bare `/v2/` probe still answers, as a registry
    // whose front end is up and whose storage is stuck.
    proxy.fault(Method::GET, r"^/v2/.+", Fault::Hang);
    proxy.fault(Method::HEAD, r"^/v2/.+", Fault::Hang);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &bed.base_image);
    let prefix = unique("faults/hung");
    let started = Instant::now();
    let out = release(
        Engine::Docker20,
        dir.path(),
        &proxy.addr,
        &prefix,
        &fake_sha(),
        &["--timeout", "2s"],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&proxy.addr) && err.contains("did not answer"),
        "{err}"
    );
    assert!(!err.contains("building"), "nothing was built: {err}");
    // Four tries of two seconds and the back-off between them, well inside a minute.
    assert!(took < Duration::from_secs(45), "took {took:?}");
}

#[test]
fn ctrl_c_during_phase_2_puts_the_moving_tags_back_on_docker20() {
    ctrl_c_during_phase_2_puts_the_moving_tags_back(Engine::Docker20);
}

#[test]
fn ctrl_c_during_phase_2_puts_the_moving_tags_back_on_docker26() {
    ctrl_c_during_phase_2_puts_the_moving_tags_back(Engine::Docker26);
}

fn ctrl_c_during_phase_2_puts_the_moving_tags_back(engine: Engine) {
    let bed = bed();
    let Released {
        dir,
        prefix,
        before,
        proxy,
    } = released_once(engine, "faults/interrupt");
    // One moving tag hangs, so phase 2 is still under way when Ctrl-C comes.
    proxy.fault(
        Method::PUT,
        &format!(r"/{prefix}-web/manifests/latest$"),
        Fault::Hang,
    );
    let mut child = release_command(engine, dir.path(), &proxy.addr, &prefix, &fake_sha())
        .args(["--progress", "json", "--timeout", "20s"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Wait for three moving tags to land (the fourth hangs), then interrupt.
    let mut landed = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains(r#""event":"pushed""#) && line.contains(r#""tag":"latest""#) {
            landed += 1;
        }
        seen.push(line);
        if landed == 3 {
            break;
        }
    }
    assert_eq!(landed, 3, "{seen:#?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    seen.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    let all = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{all}");
    assert_eq!(
        seen.iter()
            .filter(|l| l.contains(r#""event":"restored""#))
            .count(),
        3,
        "{all}"
    );
    assert_eq!(latest(&bed.plain_registry, &prefix), before, "{all}");
}

#[test]
fn commands_that_only_read_the_registry_keep_the_deadline_too() {
    let bed = bed();
    let proxy = RegistryProxy::start(&bed.plain_registry);
    proxy.fault(Method::GET, r"^/v2/.+", Fault::Hang);
    proxy.fault(Method::HEAD, r"^/v2/.+", Fault::Hang);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &bed.base_image);
    let prefix = unique("faults/hung-read");
    let repository = format!("{prefix}-{{service}}");
    let reads: [&[&str]; 2] = [
        &["plan", "--check-registry"],
        &["config", "--lock-image-digests"],
    ];
    for command in reads {
        let started = Instant::now();
        let out = wharf(dir.path())
            .args(command)
            .args(["--registry", &proxy.addr, "--repository", &repository])
            .args(["--tag", "{git_sha}", "--timeout", "2s"])
            .env("GITHUB_SHA", fake_sha())
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{command:?}: {err}");
        assert!(err.contains("did not answer"), "{command:?}: {err}");
        // Under the default deadline (15 s) one request alone would take longer.
        assert!(took < Duration::from_secs(12), "{command:?} took {took:?}");
    }
}
