//! No input runs away: hostile compose files (nested anchors, nested defaults) load in bounded
//! memory and time, and every file wharf reads — compose and env files, Dockerfiles, ignore
//! files, SSH keys, secrets, the lifecycle policy — is refused with a clear error, not read for
//! ever or waited on, when it is a FIFO or a device.
//!
//! Each run gets an address-space limit (`ulimit -v`) and a deadline, so that a regression
//! fails the test quickly instead of taking the machine down.

use crate::support::{bed_var, unique, wharf, write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The address space wharf may use in these runs. A debug build maps a few hundred MB of
/// threads and libraries; the inputs below took gigabytes before they were bounded.
const ADDRESS_SPACE_KB: u64 = 1024 * 1024;

/// Generous for a busy two-core machine; a hang is what this catches.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `cmd` under the address-space limit and the deadline; panics when it runs over.
fn bounded(cmd: &Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KB} && exec \"$0\" \"$@\""
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        sh.current_dir(d);
    }
    let mut child = sh
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("sh runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wharf ran for more than {DEADLINE:?}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts exit 2 (nothing built) and returns stderr.
fn refused(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    err
}

#[test]
fn nested_anchors_load_in_bounded_memory() {
    // Each anchored sequence holds the next: 9000 levels, 80 KB. Copying each anchored node
    // took memory quadratic in the depth (gigabytes here); docker compose loads the file.
    let levels = 9000;
    let value: String =
        (0..levels).map(|i| format!("&a{i} [")).collect::<String>() + "x" + &"]".repeat(levels);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        &format!("x-deep: {value}\nservices:\n  api:\n    image: shop/api\n    build: .\n"),
    );
    let out = bounded(wharf(dir.path()).args(["config", "--services"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "api\n");
}

#[test]
fn nested_defaults_are_refused_without_running_away() {
    // Every level of `${A:-${A:-…}}` cost about 330 KB; 5000 levels are 35 KB of text.
    let levels = 5000;
    let value = "${A:-".repeat(levels) + "x" + &"}".repeat(levels);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  api:\n    image: shop/api\n    build: .\n    environment:\n      X: '{value}'\n"
        ),
    );
    let err = refused(&bounded(wharf(dir.path()).arg("config").env_remove("A")));
    assert!(
        err.contains("services.api.environment.X")
            && err.contains("variables are nested more than 64 levels deep"),
        "{err}"
    );
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// `name` in `dir` as a FIFO nobody writes to, or as a link to `/dev/zero`.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    Fifo,
    Zero,
}

impl Hostile {
    fn plant(self, path: &Path) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        match self {
            Hostile::Fifo => mkfifo(path),
            Hostile::Zero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        }
    }

    /// How wharf names the kind of file.
    fn named(self) -> &'static str {
        match self {
            Hostile::Fifo => "is a FIFO, not a regular file",
            Hostile::Zero => "is a character device, not a regular file",
        }
    }
}

const BOTH: [Hostile; 2] = [Hostile::Fifo, Hostile::Zero];

/// A project with one service `api` built from `./api`, plus `extra` in its build section.
fn project(dir: &Path, extra: &str) {
    write(
        dir,
        "compose.yaml",
        &format!(
            "services:\n  api:\n    image: shop/api\n    build:\n      context: ./api\n{extra}"
        ),
    );
    write(dir, "api/Dockerfile", "FROM scratch\nCOPY app /app\n");
    write(dir, "api/app", "app\n");
}

#[test]
fn compose_and_env_files_that_are_devices_are_refused() {
    for hostile in BOTH {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), "");
        let bad = dir.path().join("hostile");
        hostile.plant(&bad);
        let bad_arg = bad.to_str().unwrap();
        match hostile {
            // A pipe is a fine compose file (`-f <(…)`); one nobody writes to is empty.
            Hostile::Fifo => {
                let err = refused(&bounded(wharf(dir.path()).args(["-f", bad_arg, "config"])));
                assert!(err.contains("empty compose file"), "{err}");
            }
            Hostile::Zero => {
                let err = refused(&bounded(wharf(dir.path()).args(["-f", bad_arg, "config"])));
                assert!(err.contains(hostile.named()), "{hostile:?}: {err}");
            }
        }
        if let Hostile::Zero = hostile {
            let err = refused(&bounded(wharf(dir.path()).args([
                "--env-file",
                bad_arg,
                "config",
            ])));
            assert!(err.contains(hostile.named()), "--env-file: {err}");
            for key in ["env_file", "label_file"] {
                write(
                    dir.path(),
                    "compose.yaml",
                    &format!("services:\n  api:\n    image: shop/api\n    build: ./api\n    {key}: [hostile]\n"),
                );
                let err = refused(&bounded(wharf(dir.path()).arg("config")));
                assert!(err.contains(hostile.named()), "{key}: {err}");
            }
        }
    }
}

#[test]
fn build_files_that_are_fifos_or_devices_are_refused_before_building() {
    // (file planted, build section, builder): each is read (or left to the daemon) while the
    // build is prepared, before the daemon is asked anything.
    let cases: [(&str, &str, &str); 5] = [
        ("api/.dockerignore", "", "classic"),
        ("api/.dockerignore", "", "buildkit"),
        ("api/Dockerfile.dockerignore", "", "buildkit"),
        (
            "api/Hostile.Dockerfile",
            "      dockerfile: Hostile.Dockerfile\n",
            "buildkit",
        ),
        ("key", "      ssh: [\"deploy=key\"]\n", "buildkit"),
    ];
    for hostile in BOTH {
        for (file, extra, builder) in cases {
            let dir = tempfile::tempdir().unwrap();
            project(dir.path(), extra);
            hostile.plant(&dir.path().join(file));
            let out = bounded(wharf(dir.path()).args(["build", "--builder", builder]));
            let err = refused(&out);
            assert!(
                err.contains(hostile.named()) && err.contains(file.rsplit('/').next().unwrap()),
                "{hostile:?} {file} ({builder}): {err}"
            );
        }
    }
}

#[test]
fn secret_files_that_are_fifos_or_devices_fail_the_build_at_once() {
    // Secrets are read when the build asks for them: the check comes when the build starts.
    bed_var("WHARF_TEST_BASE_IMAGE");
    for hostile in BOTH {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "compose.yaml",
            &format!(
                "services:\n  api:\n    image: {}\n    build:\n      context: ./api\n      secrets: [token]\nsecrets:\n  token:\n    file: ./token\n",
                unique("wharf-test/secret")
            ),
        );
        write(
            dir.path(),
            "api/Dockerfile",
            "FROM scratch\nCOPY app /app\n",
        );
        write(dir.path(), "api/app", "app\n");
        hostile.plant(&dir.path().join("token"));
        let out = bounded(wharf(dir.path()).arg("build"));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("secret token") && err.contains(hostile.named()),
            "{hostile:?}: {err}"
        );
    }
}

#[test]
fn a_lifecycle_policy_that_is_a_fifo_or_a_device_is_refused() {
    let registry = bed_var("WHARF_TEST_ECR_REGISTRY");
    bed_var("AWS_ENDPOINT_URL");
    for hostile in BOTH {
        let dir = tempfile::tempdir().unwrap();
        let repo = unique("wharf-test-policy");
        write(
            dir.path(),
            "compose.yaml",
            &format!(
                "x-wharf:\n  create_repositories: true\n  lifecycle_policy: policy.json\nservices:\n  api:\n    image: {registry}/{repo}\n    build: ./api\n"
            ),
        );
        write(
            dir.path(),
            "api/Dockerfile",
            "FROM scratch\nCOPY app /app\n",
        );
        write(dir.path(), "api/app", "app\n");
        hostile.plant(&PathBuf::from(dir.path()).join("policy.json"));
        let err = refused(&bounded(
            wharf(dir.path())
                .args(["build", "--push"])
                .env("GITHUB_SHA", crate::support::SHA),
        ));
        assert!(
            err.contains("lifecycle_policy") && err.contains(hostile.named()),
            "{hostile:?}: {err}"
        );
    }
}
