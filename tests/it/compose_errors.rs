//! Bad compose projects get human errors: `wharf config` exits 2, prints nothing on stdout, and
//! its stderr names the file, the line where YAML gives one, the key path and the offending
//! name, with no panic and no Rust debug dump. Hostile inputs (deep nesting, alias bombs,
//! binary bytes) are refused the same way, quickly.

use crate::support::wharf_bin;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A compose project in a scratch folder under the target directory (no compose file in any
/// parent folder, so parent-folder discovery finds nothing unexpected).
struct Project {
    dir: PathBuf,
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Project {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("compose-errors-{}", std::process::id()))
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Project { dir }
    }

    fn file(self, relative: &str, content: impl AsRef<[u8]>) -> Self {
        let path = self.dir.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        self
    }

    /// `wharf ARGS config --format json` in the project folder, with a clean environment.
    fn config(&self, args: &[&str]) -> Outcome {
        self.config_env(args, &[])
    }

    fn config_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let child = Command::new(wharf_bin())
            .args(args)
            .args(["config", "--format", "json"])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start wharf");
        // Read the output while waiting: a large document fills the pipe, and a child blocked
        // on a full pipe never exits.
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("wharf config took over 20 s in {}", self.dir.display());
            }
        };
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Marks of a Rust panic or of a `{:?}` dump leaking to the user.
const DEBUG_MARKS: &[&str] = &[
    "panicked",
    "RUST_BACKTRACE",
    "stack backtrace",
    "Error {",
    "Error(",
    "Os {",
    "Some(",
    "kind: ",
    "Location {",
];

impl Outcome {
    /// Exit 2, nothing on stdout, and an error that mentions each of `names`.
    #[track_caller]
    fn refused_naming(&self, names: &[&str]) -> &Self {
        assert_eq!(
            self.code,
            Some(2),
            "want exit code 2 (configuration error), got {:?}; stderr:\n{}",
            self.code,
            self.stderr
        );
        assert!(
            self.stdout.trim().is_empty(),
            "a refused project printed on stdout:\n{}",
            self.stdout
        );
        assert!(
            !self.stderr.trim().is_empty(),
            "refused without a word on stderr"
        );
        for mark in DEBUG_MARKS {
            assert!(
                !self.stderr.contains(mark),
                "stderr carries a panic or debug dump ({mark:?}):\n{}",
                self.stderr
            );
        }
        // A brace not opening a `${…}` template is a struct dump.
        let stray = self
            .stderr
            .char_indices()
            .any(|(i, c)| c == '{' && !self.stderr[..i].ends_with('$'));
        assert!(!stray, "stderr looks like a debug dump:\n{}", self.stderr);
        for name in names {
            assert!(
                self.stderr.contains(name),
                "the error does not name {name:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    /// The error points at `file` line `line`, as `file:line` or `line N`.
    #[track_caller]
    fn at_line(&self, file: &str, line: u32) -> &Self {
        let s = &self.stderr;
        let joined = format!("{file}:{line}");
        let spelled = format!("line {line}");
        assert!(
            s.contains(file) && (s.contains(&joined) || s.to_lowercase().contains(&spelled)),
            "the error does not point at {file} line {line}:\n{s}"
        );
        self
    }
}

#[test]
fn malformed_yaml_names_file_and_line() {
    Project::new("malformed-tab")
        .file("compose.yaml", "services:\n  api:\n\timage: a\n")
        .config(&[])
        .refused_naming(&["compose.yaml"])
        .at_line("compose.yaml", 3);
    Project::new("malformed-mapping")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    build:\n      context: .\n      args:\n        A: x: y\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml"])
        .at_line("compose.yaml", 7);
    Project::new("unclosed-flow")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    profiles: [dev\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml"]);
}

#[test]
fn duplicate_key_names_key_and_line() {
    Project::new("duplicate-key")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    image: b\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "image"])
        .at_line("compose.yaml", 4);
}

#[test]
fn unknown_keys_name_file_line_and_key_path() {
    Project::new("unknown-top-level")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\nservics:\n  b:\n    image: b\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "servics"])
        .at_line("compose.yaml", 4);
    Project::new("unknown-service-key")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    biuld: .\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "services.api", "biuld"])
        .at_line("compose.yaml", 4);
    Project::new("unknown-build-key")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    build:\n      context: .\n      dockerfiles: Dockerfile\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "services.api.build", "dockerfiles"])
        .at_line("compose.yaml", 6);
}

#[test]
fn unknown_key_in_override_names_the_override_file() {
    let out = Project::new("unknown-in-override")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    build: .\n",
        )
        .file(
            "compose.override.yaml",
            "services:\n  api:\n    build:\n      contxt: ./other\n",
        )
        .config(&[]);
    out.refused_naming(&["compose.override.yaml", "services.api.build", "contxt"])
        .at_line("compose.override.yaml", 4);
}

#[test]
fn wrong_type_names_key_path_and_line() {
    Project::new("wrong-type")
        .file("compose.yaml", "services:\n  api:\n    image: [a, b]\n")
        .config(&[])
        .refused_naming(&["compose.yaml", "services.api.image"])
        .at_line("compose.yaml", 3);
    Project::new("args-not-a-map")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    build:\n      context: .\n      args: \"A=1\"\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "services.api.build.args"])
        .at_line("compose.yaml", 6);
}

#[test]
fn missing_required_variable_names_variable_key_path_and_hint() {
    Project::new("required-missing")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: api\n    build:\n      context: .\n      args:\n        TAG: ${RELEASE_TAG:?set RELEASE_TAG to the release}\n",
        )
        .config(&[])
        .refused_naming(&[
            "compose.yaml",
            "RELEASE_TAG",
            "services.api.build.args.TAG",
            "set RELEASE_TAG to the release",
        ]);
}

#[test]
fn invalid_interpolation_names_key_path_and_template() {
    Project::new("invalid-template")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: api:${}\n    build: .\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "services.api.image", "${}"]);
    Project::new("unclosed-template")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: api\n    build:\n      context: .\n      args:\n        A: ${VERSION\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml", "services.api.build.args.A", "${VERSION"]);
}

#[test]
fn missing_extends_file_names_it_and_the_service() {
    Project::new("extends-missing-file")
        .file(
            "compose.yaml",
            "services:\n  api:\n    extends:\n      file: common/nope.yml\n      service: base\n",
        )
        .config(&[])
        .refused_naming(&["nope.yml", "api"]);
}

#[test]
fn missing_extended_service_names_it() {
    Project::new("extends-missing-service")
        .file(
            "compose.yaml",
            "services:\n  api:\n    extends: basse\n    image: a\n  base:\n    image: b\n",
        )
        .config(&[])
        .refused_naming(&["basse", "api"]);
}

#[test]
fn extends_cycle_names_the_services() {
    Project::new("extends-cycle")
        .file(
            "compose.yaml",
            "services:\n  alpha:\n    extends: beta\n    image: a\n  beta:\n    extends: alpha\n    image: b\n",
        )
        .config(&[])
        .refused_naming(&["alpha", "beta"]);
}

#[test]
fn missing_env_file_names_it() {
    Project::new("env-file-missing")
        .file("compose.yaml", "services:\n  api:\n    image: a\n")
        .config(&["--env-file", "missing.env"])
        .refused_naming(&["missing.env"]);
}

#[test]
fn bad_dotenv_names_file_and_line() {
    Project::new("dotenv-bad-key")
        .file("compose.yaml", "services:\n  api:\n    image: a\n")
        .file(".env", "GOOD=1\nBAD KEY=1\n")
        .config(&[])
        .refused_naming(&[".env"])
        .at_line(".env", 2);
}

#[test]
fn missing_compose_file_says_what_was_looked_for() {
    Project::new("no-compose-file")
        .file("README", "no compose file here\n")
        .config(&[])
        .refused_naming(&["compose.yaml"]);
    Project::new("f-missing")
        .file("compose.yaml", "services:\n  api:\n    image: a\n")
        .config(&["-f", "prod.yml"])
        .refused_naming(&["prod.yml"]);
}

#[test]
fn missing_include_names_it() {
    Project::new("include-missing")
        .file(
            "compose.yaml",
            "include:\n  - lib/compose.yaml\nservices:\n  api:\n    image: a\n",
        )
        .config(&[])
        .refused_naming(&["lib/compose.yaml"]);
}

#[test]
fn invalid_project_name_names_it() {
    Project::new("bad-project-name")
        .file("compose.yaml", "services:\n  api:\n    image: a\n")
        .config(&["-p", "My_App"])
        .refused_naming(&["My_App"]);
    Project::new("bad-env-project-name")
        .file("compose.yaml", "services:\n  api:\n    image: a\n")
        .config_env(&[], &[("COMPOSE_PROJECT_NAME", "my.app")])
        .refused_naming(&["my.app", "COMPOSE_PROJECT_NAME"]);
}

#[test]
fn undefined_build_secret_names_it_and_the_service() {
    Project::new("undefined-secret")
        .file(
            "compose.yaml",
            "services:\n  api:\n    image: a\n    build:\n      context: .\n      secrets: [npm_token]\n",
        )
        .config(&[])
        .refused_naming(&["npm_token", "api"]);
}

#[test]
fn a_platform_missing_from_build_platforms_names_both_fields() {
    let refused = Project::new("platform-not-listed")
        .file(
            "compose.yaml",
            "services:\n  app:\n    platform: linux/riscv64\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
        )
        .config(&[]);
    refused
        .refused_naming(&[
            "services.app.build.platforms",
            "linux/riscv64",
            "services.app.platform",
        ])
        .at_line("compose.yaml", 6);
    assert!(
        !refused.stderr.contains("include entry"),
        "no hint about something else:\n{}",
        refused.stderr
    );
}

#[test]
fn service_without_image_or_build_names_it() {
    Project::new("no-image-no-build")
        .file(
            "compose.yaml",
            "services:\n  ghost:\n    environment: [A=1]\n",
        )
        .config(&[])
        .refused_naming(&["ghost"]);
}

#[test]
fn hostile_inputs_are_refused_quickly_without_a_crash() {
    // Nesting deep enough to overflow a naive recursive parser.
    let deep = format!("services: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    Project::new("deep-nesting")
        .file("compose.yaml", deep)
        .config(&[])
        .refused_naming(&["compose.yaml"]);
    let deep_map = format!(
        "x-deep: {}1{}\nservices:\n  a:\n    image: a\n",
        "{a: ".repeat(5_000),
        "}".repeat(5_000)
    );
    let out = Project::new("deep-mapping")
        .file("compose.yaml", deep_map)
        .config(&[]);
    assert_ne!(
        out.code, None,
        "wharf was killed by a signal:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);

    // An alias bomb: each level doubles the size of the expanded document.
    let mut bomb = String::from("x-a0: &a0 [\"lol\", \"lol\"]\n");
    for i in 1..40 {
        bomb.push_str(&format!("x-a{i}: &a{i} [*a{p}, *a{p}]\n", p = i - 1));
    }
    bomb.push_str(
        "services:\n  api:\n    image: a\n    build:\n      context: .\n      args: *a39\n",
    );
    let out = Project::new("alias-bomb")
        .file("compose.yaml", bomb)
        .config(&[]);
    assert_eq!(out.code, Some(2), "stderr:\n{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);

    // Bytes that are not UTF-8, and a NUL.
    Project::new("binary")
        .file(
            "compose.yaml",
            b"services:\n  api:\n    image: \xff\xfe\x00a\n",
        )
        .config(&[])
        .refused_naming(&["compose.yaml"]);

    // A folder where the compose file should be.
    let p = Project::new("file-is-a-folder");
    fs::create_dir_all(p.dir.join("compose.yaml")).unwrap();
    let out = p.config(&[]);
    assert_eq!(out.code, Some(2), "stderr:\n{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
