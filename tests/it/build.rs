//! `wharf build` through the binary against the bed's engine: what compose would build, in the
//! right order, concurrently where it can, with BuildKit and the classic builder; refusals
//! before any build.

use crate::support::{bed, compose, run, run_in, stderr, unique, wharf, wharf_bin, write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn image_label(image: &str, label: &str) -> String {
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            image,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A project of three services: `base`, `app` (multi-stage, target, args, FROM base) and
/// `tool` (inline Dockerfile, FROM base).
/// The `never` stage fails: BuildKit skips stages the target does not need; the classic
/// builder runs every stage, so for it the stage is harmless.
fn shop(dir: &Path, prefix: &str, base_image: &str, never: &str) {
    write(
        dir,
        "compose.yaml",
        &format!(
            r#"services:
  app:
    image: {prefix}/app
    build:
      context: ./app
      target: runtime
      args:
        BASE: {prefix}/base
        MESSAGE: from-compose
      labels:
        team: storefront
  base:
    image: {prefix}/base
    build: ./base
  tool:
    image: {prefix}/tool
    build:
      context: ./tool
      dockerfile_inline: |
        FROM {prefix}/base
        COPY hello /hello
"#
        ),
    );
    write(
        dir,
        "base/Dockerfile",
        &format!(
            "FROM {base_image}\nRUN echo {} > /base-id\n",
            unique("base")
        ),
    );
    write(
        dir,
        "app/Dockerfile",
        &format!(
            "ARG BASE=wrong\nFROM {base_image} AS build\nARG MESSAGE=default\nRUN echo \"$MESSAGE\" > /msg\nFROM build AS never\nRUN {never}\nFROM $BASE AS runtime\nCOPY --from=build /msg /msg\n"
        ),
    );
    write(dir, "tool/hello", "hello");
}

fn builds_the_shop(builder: &str) {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique(&format!("shop{builder}")).replace('-', "");
    let never = if builder == "buildkit" {
        "exit 1"
    } else {
        "true"
    };
    shop(dir.path(), &prefix, &bed.base_image, never);
    let out = run(wharf(dir.path()).args(["build", "--builder", builder]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(out.stdout.is_empty(), "build prints results only: nothing");
    // base builds before the two services whose Dockerfiles start FROM it.
    let base_built = err.find("[base] built").expect("base built");
    assert!(err.find("[app] building").unwrap() > base_built, "{err}");
    assert!(err.find("[tool] building").unwrap() > base_built, "{err}");
    let base_id = run_in(&format!("{prefix}/base"), "cat /base-id");
    // The target stage, the args, and the base image from another service.
    assert_eq!(
        run_in(&format!("{prefix}/app"), "cat /msg /base-id"),
        format!("from-compose\n{base_id}")
    );
    assert_eq!(
        run_in(&format!("{prefix}/tool"), "cat /hello /base-id"),
        format!("hello{base_id}")
    );
    assert_eq!(image_label(&format!("{prefix}/app"), "team"), "storefront");
    // No git repository holds a commit here: no creation time is made up (see reproducible).
    assert!(image_label(&format!("{prefix}/app"), "org.opencontainers.image.created").is_empty());
}

#[test]
fn buildkit_builds_what_compose_describes_in_order() {
    builds_the_shop("buildkit");
}

#[test]
fn the_classic_builder_builds_it_too() {
    builds_the_shop("classic");
}

#[test]
fn independent_services_build_concurrently() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("conc").replace('-', "");
    write(
        dir.path(),
        "compose.yaml",
        &format!("services:\n  one:\n    image: {prefix}/one\n    build: ./one\n  two:\n    image: {prefix}/two\n    build: ./two\n"),
    );
    for s in ["one", "two"] {
        // Unique content defeats the build cache, so both really sleep.
        write(
            dir.path(),
            &format!("{s}/Dockerfile"),
            &format!(
                "FROM {}\nRUN echo {} && sleep 2\n",
                bed.base_image,
                unique(s)
            ),
        );
    }
    let started = Instant::now();
    let out = run(wharf(dir.path()).args(["build", "--parallel", "2"]));
    let elapsed = started.elapsed().as_secs_f64();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let first_built = err.find("] built").unwrap();
    assert!(
        err.find("[one] building").unwrap() < first_built
            && err.find("[two] building").unwrap() < first_built,
        "both start before either ends: {err}"
    );
    // Wall time against the services' own build times (not a fixed bound, which a loaded
    // machine would break): run one after the other, the run would take at least their sum.
    let each: Vec<f64> = err
        .lines()
        .filter_map(|l| l.split("built in ").nth(1))
        .filter_map(|t| t.trim_end_matches('s').parse().ok())
        .collect();
    assert_eq!(each.len(), 2, "{err}");
    assert!(
        each.iter().all(|t| *t >= 2.0),
        "each build really ran its 2 s step: {each:?}"
    );
    let sum: f64 = each.iter().sum();
    assert!(
        elapsed < sum,
        "the two builds overlapped: {elapsed:.1}s for {sum:.1}s of builds"
    );
}

#[test]
fn every_missing_dockerfile_and_context_is_reported_before_any_build() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  ok:\n    build: ./ok\n  nodockerfile:\n    build: ./empty\n  nocontext:\n    build: ./missing\n  named:\n    build:\n      context: ./ok\n      dockerfile: Dockerfile.prod\n",
    );
    write(
        dir.path(),
        "ok/Dockerfile",
        &format!("FROM {}\n", bed.base_image),
    );
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let out = run(wharf(dir.path()).args(["build"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("services.nodockerfile.build.dockerfile"),
        "{err}"
    );
    assert!(err.contains("services.nocontext.build.context"), "{err}");
    assert!(
        err.contains("services.named.build.dockerfile") && err.contains("Dockerfile.prod"),
        "{err}"
    );
    assert!(!err.contains("building"), "nothing was built: {err}");
}

#[test]
fn fields_the_daemon_cannot_honour_are_refused_by_name() {
    bed();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  multi:\n    build:\n      context: .\n      platforms: [linux/amd64, arm64]\n  named:\n    build:\n      context: .\n      additional_contexts:\n        extra: ./extra\n        base: service:multi\n",
    );
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    let out = run(wharf(dir.path()).args(["build"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("services.multi.build.platforms") && err.contains("`arm64` is not a platform"),
        "{err}"
    );
    assert!(
        err.contains("services.named.build.additional_contexts.extra")
            && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn the_daemon_is_found_as_the_docker_cli_finds_it() {
    use sha2::{Digest, Sha256};
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  one:\n    image: {}\n    build: .\n",
            unique("ctx").replace('-', "")
        ),
    );
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {}\n", bed.base_image),
    );
    // A Docker context, selected in the config, naming the engine's socket.
    let config = tempfile::tempdir().unwrap();
    let id = format!("{:x}", Sha256::digest(b"bed"));
    let meta = serde_json::json!({"Name": "bed", "Endpoints": {"docker": {"Host": "unix:///var/run/docker.sock"}}});
    write(
        config.path(),
        &format!("contexts/meta/{id}/meta.json"),
        &meta.to_string(),
    );
    write(config.path(), "config.json", r#"{"currentContext": "bed"}"#);
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = wharf(dir.path());
        cmd.arg("build")
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", config.path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // DOCKER_HOST wins over the context; an unreachable daemon is named, exit 1.
    let out = run(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{err}"
    );
    // A context that does not exist is named too.
    let out = run(&[("DOCKER_CONTEXT", "nosuch")]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the Docker context `nosuch`"), "{err}");
}

#[test]
fn several_extra_hosts_reach_both_builders_as_with_docker_compose() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let image = unique("hosts").replace('-', "");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {image}\n    build:\n      context: .\n      extra_hosts:\n        - \"db.internal:10.11.12.13\"\n        - \"cache.internal=10.11.12.14\"\n"
        ),
    );
    // The unique echo keeps each builder from reusing another run's step.
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo {} && grep '\\.internal' /etc/hosts | sed 's/[[:space:]]\\+/ /g' | sort > /hosts-seen\n",
            bed.base_image,
            unique("run")
        ),
    );
    let mut seen = Vec::new();
    for builder in ["buildkit", "classic"] {
        let out = run(wharf(dir.path()).args(["build", "--builder", builder]));
        assert_eq!(out.status.code(), Some(0), "{builder}: {}", stderr(&out));
        seen.push(run_in(&image, "cat /hosts-seen"));
    }
    let out = compose(dir.path())
        .args(["build", "--no-cache"])
        .output()
        .expect("docker compose runs");
    assert!(
        out.status.success(),
        "docker compose build: {}",
        stderr(&out)
    );
    let reference = run_in(&image, "cat /hosts-seen");
    assert_eq!(
        reference, "10.11.12.13 db.internal\n10.11.12.14 cache.internal",
        "docker compose's build sees both"
    );
    assert_eq!(seen, [reference.clone(), reference]);
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

/// What the secret `tok` looks like inside builds of wharf and docker compose, run with
/// `envs`: its content, or `absent`.
fn secret_seen_by_both(dir: &Path, image: &str, envs: &[(&str, Option<&str>)]) -> [String; 2] {
    let base = bed().base_image;
    let mut seen = Vec::new();
    for reference in [false, true] {
        // A new step each time: secrets are not part of the build cache's keys.
        write(
            dir,
            "Dockerfile",
            &format!(
                "FROM {base}\nRUN --mount=type=secret,id=tok echo {} && (cat /run/secrets/tok 2>/dev/null || echo absent) > /seen\n",
                unique("run")
            ),
        );
        let mut cmd = if reference { compose(dir) } else { wharf(dir) };
        cmd.arg("build");
        for (k, v) in envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "reference={reference}: {}",
            stderr(&out)
        );
        seen.push(run_in(image, "cat /seen"));
    }
    [seen[0].clone(), seen[1].clone()]
}

#[test]
fn build_secrets_read_variables_where_docker_compose_reads_them() {
    bed();
    let dir = tempfile::tempdir().unwrap();
    let image = unique("envsecret").replace('-', "");
    let var = format!("WHARF_BUILD_SECRET_{}", std::process::id());
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {image}\n    build:\n      context: .\n      secrets: [tok]\nsecrets:\n  tok:\n    environment: {var}\n"
        ),
    );
    // Set only in the project's .env: docker compose hands build secrets the variables of its
    // own process environment (BuildKit's secret provider reads them there), not .env's.
    write(dir.path(), ".env", &format!("{var}=from-dotenv\n"));
    let [wharf_seen, compose_seen] = secret_seen_by_both(dir.path(), &image, &[(&var, None)]);
    assert_eq!(compose_seen, "absent");
    assert_eq!(wharf_seen, compose_seen);
    // Set in the process environment: both read it.
    let [wharf_seen, compose_seen] =
        secret_seen_by_both(dir.path(), &image, &[(&var, Some("from-process"))]);
    assert_eq!(compose_seen, "from-process");
    assert_eq!(wharf_seen, compose_seen);
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

/// Copies OpenSSH's `ssh-add` with the libraries it loads into `dir/tools`; returns the shell
/// words that run it from `/ctx/tools` in a build.
fn copy_ssh_add(dir: &Path) -> &'static str {
    let bin = Path::new("/usr/bin/ssh-add");
    assert!(
        bin.exists(),
        "ssh-add is missing: install Debian's openssh-client (scripts/testbed up does)"
    );
    let tools = dir.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::copy(bin, tools.join("ssh-add")).unwrap();
    let out = Command::new("ldd").arg(bin).output().expect("ldd runs");
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let lib = Path::new(lib);
        std::fs::copy(lib, tools.join(lib.file_name().unwrap())).unwrap();
    }
    "/ctx/tools/ld-linux-x86-64.so.2 --library-path /ctx/tools /ctx/tools/ssh-add"
}

#[test]
fn ssh_agents_are_forwarded_as_docker_compose_forwards_them() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let image = unique("sshfwd").replace('-', "");
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "services:\n  app:\n    image: {image}\n    build:\n      context: .\n      ssh:\n        - default\n        - deploy=./agent.sock\n"
        ),
    );
    let ssh_add = copy_ssh_add(dir.path());
    // A real agent, holding one new key.
    let socket = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent starts (openssh-client)");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let key = dir.path().join("id_test");
    let made = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "compose-compared",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));

    let mut listed = Vec::new();
    for reference in [false, true] {
        write(
            dir.path(),
            "Dockerfile",
            &format!(
                "FROM {}\nCOPY tools /ctx/tools\nRUN --mount=type=ssh,required echo {} && {ssh_add} -l > /default\nRUN --mount=type=ssh,id=deploy,required {ssh_add} -l > /deploy\n",
                bed.base_image,
                unique("run")
            ),
        );
        let mut cmd = Command::new(if reference {
            bed.compose.as_path()
        } else {
            wharf_bin()
        });
        let out = cmd
            .arg("build")
            .current_dir(dir.path())
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reference={reference}: {}",
            stderr(&out)
        );
        listed.push(run_in(&image, "cat /default /deploy"));
    }
    assert!(
        listed[1].contains("compose-compared (ED25519)"),
        "{}",
        listed[1]
    );
    assert_eq!(listed[0], listed[1]);

    // `default` without SSH_AUTH_SOCK: a configuration error before any build, naming the
    // field; docker compose refuses too.
    let out = wharf(dir.path())
        .arg("build")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("services.app.build.ssh") && err.contains("SSH_AUTH_SOCK is not set"),
        "{err}"
    );
    assert!(!err.contains("building"), "nothing was built: {err}");
    let reference = Command::new(&bed.compose)
        .arg("build")
        .current_dir(dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(
        !reference.status.success() && stderr(&reference).contains("SSH_AUTH_SOCK"),
        "docker compose refuses too: {}",
        stderr(&reference)
    );

    // The classic builder cannot forward an agent: refused by name.
    let out = run(wharf(dir.path()).args(["build", "--builder", "classic"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("services.app.build.ssh") && err.contains("classic builder"),
        "{err}"
    );
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}
