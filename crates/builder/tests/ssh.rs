//! SSH forwarding through wharf's BuildKit session, against the test bed's daemon and a real
//! `ssh-agent`: `RUN --mount=type=ssh` lists the agent's keys and has data signed with them,
//! the signatures checked outside the build; key files are served by an agent in memory; an
//! id nobody forwards fails the build with the daemon's message.
//!
//! Inside the build, OpenSSH's own `ssh-add` and `ssh-keygen` (copied into the context with
//! the libraries they load) talk to the forwarded agent.
//!
//! These tests need the bed (`scripts/testbed up`, then `eval "$(scripts/testbed env)"`) and
//! OpenSSH's client tools; they fail, never skip, without them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use wharf_builder::build::{build, BuildError, BuildRequest, BuilderKind};
use wharf_builder::context::Context;
use wharf_builder::session::SshAgent;

mod common;
use common::{base_image, test_image, unique};

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: install Debian's openssh-client (scripts/testbed up does)");
}

/// An `ssh-agent` listening on a socket in `dir`, ended when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new(tool("ssh-agent"))
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts");
        for _ in 0..100 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(socket.exists(), "ssh-agent made no socket");
        Agent { child, socket }
    }

    fn add(&self, key: &Path) {
        let out = Command::new(tool("ssh-add"))
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new key pair without a passphrase: `KEY` and `KEY.pub`.
fn keygen(dir: &Path, name: &str, kind: &[&str]) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new(tool("ssh-keygen"))
        .args(["-q", "-N", "", "-C", name])
        .args(kind)
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

/// `SHA256:…` of a key.
fn fingerprint(public: &Path) -> String {
    let out = Command::new(tool("ssh-keygen"))
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
        .to_string()
}

/// Copies `ssh-add` and `ssh-keygen` with the libraries they load into `ctx/tools`, and
/// returns the shell prefix that runs one of them there.
fn copy_tools(ctx: &Path) -> &'static str {
    let tools = ctx.join("tools");
    fs::create_dir_all(&tools).unwrap();
    for name in ["ssh-add", "ssh-keygen"] {
        let bin = tool(name);
        fs::copy(&bin, tools.join(name)).unwrap();
        let out = Command::new("ldd").arg(&bin).output().expect("ldd runs");
        for lib in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let lib = Path::new(lib);
            let target = tools.join(lib.file_name().unwrap());
            if !target.exists() {
                fs::copy(lib, target).unwrap();
            }
        }
    }
    "/ctx/tools/ld-linux-x86-64.so.2 --library-path /ctx/tools /ctx/tools/"
}

async fn build_with(ctx: &Path, tag: &str, ssh: Vec<SshAgent>) -> Result<Vec<String>, BuildError> {
    let (docker, _) = wharf_builder::daemon::connect()
        .await
        .expect("the daemon answers: run scripts/testbed up");
    let context = Context::prepare(ctx, None, BuilderKind::BuildKit).expect("a context");
    let request = BuildRequest {
        tag: tag.to_string(),
        builder: BuilderKind::BuildKit,
        ssh,
        // The agent is new each run: a cached step would prove nothing.
        no_cache: true,
        ..Default::default()
    };
    let mut lines = Vec::new();
    build(&docker, &request, &context, |l| lines.push(l.to_string()))
        .await
        .map(|()| lines)
}

/// The files `paths` of `image`, read through `docker cp` into `dir`.
fn copy_out(image: &str, paths: &[&str], dir: &Path) {
    let out = Command::new("docker")
        .args(["create", image, "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker create {image}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for p in paths {
        let ok = Command::new("docker")
            .args(["cp", &format!("{id}:{p}")])
            .arg(dir.join(Path::new(p).file_name().unwrap()))
            .status()
            .unwrap();
        assert!(ok.success(), "docker cp {p}");
    }
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    let _ = Command::new("docker").args(["rmi", "-f", image]).output();
}

/// Checks `sig` is `public`'s signature of `data` in namespace `wharf`.
fn assert_signed(public: &Path, data: &Path, sig: &Path) {
    let out = Command::new(tool("ssh-keygen"))
        .args(["-Y", "check-novalidate", "-n", "wharf", "-f"])
        .arg(public)
        .arg("-s")
        .arg(sig)
        .stdin(fs::File::open(data).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the signature made in the build verifies: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_agent_socket_is_forwarded_to_run_mounts() {
    let base = base_image();
    let keys = tempfile::tempdir().unwrap();
    let agent = Agent::start(keys.path());
    let key = keygen(keys.path(), "forwarded", &["-t", "ed25519"]);
    agent.add(&key);
    let public = key.with_extension("pub");

    let ctx = tempfile::tempdir().unwrap();
    let run = copy_tools(ctx.path());
    fs::copy(&public, ctx.path().join("key.pub")).unwrap();
    fs::write(ctx.path().join("data"), unique("signed-data")).unwrap();
    // The default id and a named one, each in its own mount.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY . /ctx\n\
             RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && {run}ssh-add -l > /listed\n\
             RUN --mount=type=ssh,id=deploy {run}ssh-keygen -Y sign -f /ctx/key.pub -n wharf < /ctx/data > /data.sig\n"
        ),
    )
    .unwrap();
    let ssh = vec![
        SshAgent::resolve_with("default", &[], Some(agent.socket.as_os_str())).unwrap(),
        SshAgent::resolve_with("deploy", std::slice::from_ref(&agent.socket), None).unwrap(),
    ];
    let tag = test_image("ssh-socket");
    build_with(ctx.path(), &tag, ssh)
        .await
        .expect("the build reaches the agent");

    let out = tempfile::tempdir().unwrap();
    copy_out(&tag, &["/listed", "/data.sig"], out.path());
    let listed = fs::read_to_string(out.path().join("listed")).unwrap();
    assert!(
        listed.contains(&fingerprint(&public)) && listed.contains("forwarded"),
        "{listed}"
    );
    assert_signed(
        &public,
        &ctx.path().join("data"),
        &out.path().join("data.sig"),
    );
}

#[tokio::test]
async fn key_files_are_served_by_an_agent_in_memory() {
    let base = base_image();
    let keys = tempfile::tempdir().unwrap();
    let ed = keygen(keys.path(), "ed", &["-t", "ed25519"]);
    let ecdsa = keygen(keys.path(), "ecdsa", &["-t", "ecdsa", "-b", "256"]);
    let rsa = keygen(keys.path(), "rsa", &["-t", "rsa", "-b", "2048"]);
    // An RSA key in the older PEM (PKCS#1) form.
    let pem = keygen(
        keys.path(),
        "pem",
        &["-t", "rsa", "-b", "2048", "-m", "PEM"],
    );

    let ctx = tempfile::tempdir().unwrap();
    let run = copy_tools(ctx.path());
    fs::write(ctx.path().join("data"), unique("signed-data")).unwrap();
    let mut steps = format!(
        "FROM {base}\nCOPY . /ctx\nRUN --mount=type=ssh,id=files {run}ssh-add -l > /listed\n"
    );
    for k in [&ed, &ecdsa, &rsa, &pem] {
        let name = k.file_name().unwrap().to_string_lossy().into_owned();
        fs::copy(
            k.with_extension("pub"),
            ctx.path().join(format!("{name}.pub")),
        )
        .unwrap();
        steps.push_str(&format!(
            "RUN --mount=type=ssh,id=files {run}ssh-keygen -Y sign -f /ctx/{name}.pub -n wharf < /ctx/data > /{name}.sig\n"
        ));
    }
    fs::write(ctx.path().join("Dockerfile"), steps).unwrap();
    let paths = vec![ed.clone(), ecdsa.clone(), rsa.clone(), pem.clone()];
    let ssh = vec![SshAgent::resolve_with("files", &paths, None).expect("the keys load")];
    let tag = test_image("ssh-keys");
    build_with(ctx.path(), &tag, ssh)
        .await
        .expect("the build signs with the keys");

    let out = tempfile::tempdir().unwrap();
    copy_out(
        &tag,
        &["/listed", "/ed.sig", "/ecdsa.sig", "/rsa.sig", "/pem.sig"],
        out.path(),
    );
    let listed = fs::read_to_string(out.path().join("listed")).unwrap();
    for k in [&ed, &ecdsa, &rsa, &pem] {
        let public = k.with_extension("pub");
        assert!(listed.contains(&fingerprint(&public)), "{k:?} in {listed}");
        let name = k.file_name().unwrap().to_string_lossy().into_owned();
        assert_signed(
            &public,
            &ctx.path().join("data"),
            &out.path().join(format!("{name}.sig")),
        );
    }
}

#[tokio::test]
async fn an_id_nobody_forwards_fails_the_build_with_the_daemons_message() {
    let base = base_image();
    let keys = tempfile::tempdir().unwrap();
    let agent = Agent::start(keys.path());
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN --mount=type=ssh,id=github,required true\n"),
    )
    .unwrap();

    // Some agent is forwarded, not this id: BuildKit's client's words, through the daemon.
    let ssh = vec![SshAgent::resolve_with("default", &[], Some(agent.socket.as_os_str())).unwrap()];
    let err = build_with(ctx.path(), &test_image("ssh-unset"), ssh)
        .await
        .expect_err("the id is not forwarded");
    assert!(
        err.to_string().contains("unset ssh forward key github"),
        "{err}"
    );

    // No SSH forwarding at all: the daemon's own message.
    let err = build_with(ctx.path(), &test_image("ssh-none"), Vec::new())
        .await
        .expect_err("nothing is forwarded");
    assert!(
        err.to_string()
            .contains("no SSH key \"github\" forwarded from the client"),
        "{err}"
    );

    // Mounts are optional unless `required`: one goes without.
    fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN --mount=type=ssh,id=github true\n"),
    )
    .unwrap();
    build_with(ctx.path(), &test_image("ssh-optional"), Vec::new())
        .await
        .expect("an optional mount needs no agent");
}

#[test]
fn a_passphrase_protected_key_is_refused_with_the_fix() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("locked");
    let out = Command::new(tool("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "secret-phrase", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = SshAgent::resolve_with("deploy", &[key], None).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("passphrase-protected")
            && text.contains("ssh-add")
            && text.contains("deploy"),
        "{text}"
    );
}
