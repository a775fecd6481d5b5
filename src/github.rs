//! GitHub Actions, when wharf runs as a workflow step (`GITHUB_ACTIONS=true`): log groups and
//! annotations through workflow commands, a job summary appended to `$GITHUB_STEP_SUMMARY`, and
//! step outputs appended to `$GITHUB_OUTPUT`.
//!
//! The command and file formats are GitHub's ("Workflow commands for GitHub Actions"); no
//! maintained Rust crate covers the multiline-output delimiter and the escaping rules together,
//! so the few lines that write them live here. Workflow commands go to stderr: the runner reads
//! them on both streams, and stdout stays for results.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The workflow step wharf runs in.
#[derive(Debug, Clone)]
pub struct Actions {
    summary: Option<PathBuf>,
    output: Option<PathBuf>,
    workspace: Option<PathBuf>,
}

/// Where an annotation points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Actions {
    /// The step's files, when running inside GitHub Actions.
    pub fn from_env() -> Option<Actions> {
        if var("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        Some(Actions {
            summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            workspace: var("GITHUB_WORKSPACE").map(PathBuf::from),
        })
    }

    /// A step writing its summary and outputs to these files.
    #[cfg(test)]
    pub fn for_files(summary: PathBuf, output: PathBuf) -> Actions {
        Actions {
            summary: Some(summary),
            output: Some(output),
            workspace: None,
        }
    }

    /// `::group::TITLE`: the lines up to [`end_group`] fold under TITLE in the log.
    pub fn group(title: &str) -> String {
        format!("::group::{}", escape_data(title))
    }

    pub fn end_group() -> &'static str {
        "::endgroup::"
    }

    /// `::error file=…,line=…,col=…,title=…::message` — shown on the run's page and, with a
    /// file, on that file in the pull request.
    pub fn error(&self, title: &str, message: &str, at: Option<&Location>) -> String {
        let mut props = Vec::new();
        if let Some(at) = at {
            props.push(format!(
                "file={}",
                escape_property(&self.repo_path(&at.file))
            ));
            if let Some(l) = at.line {
                props.push(format!("line={l}"));
            }
            if let Some(c) = at.column {
                props.push(format!("col={c}"));
            }
        }
        props.push(format!("title={}", escape_property(title)));
        format!("::error {}::{}", props.join(","), escape_data(message))
    }

    pub fn warning(message: &str) -> String {
        format!("::warning::{}", escape_data(message))
    }

    /// Annotations name files relative to the repository root (the workspace).
    fn repo_path(&self, file: &str) -> String {
        let path = Path::new(file);
        let base = self
            .workspace
            .clone()
            .or_else(|| std::env::current_dir().ok());
        match base.as_deref().and_then(|b| path.strip_prefix(b).ok()) {
            Some(rel) => rel.display().to_string(),
            None => file.to_string(),
        }
    }

    /// Appends markdown to the job summary (nothing when the runner gave no summary file).
    pub fn append_summary(&self, markdown: &str) -> std::io::Result<()> {
        match &self.summary {
            Some(path) => append(path, markdown),
            None => Ok(()),
        }
    }

    /// Sets step outputs (`steps.<id>.outputs.<name>`), each in the multiline form
    /// `name<<DELIMITER`, with a delimiter the value cannot contain.
    pub fn set_outputs(&self, outputs: &[(String, String)]) -> std::io::Result<()> {
        let Some(path) = &self.output else {
            return Ok(());
        };
        let mut text = String::new();
        for (name, value) in outputs {
            let delimiter = delimiter_for(value);
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        }
        append(path, &text)
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// A random delimiter (as GitHub's own toolkit makes them) that does not occur in `value`.
fn delimiter_for(value: &str) -> String {
    loop {
        let d = format!("ghadelimiter_{}", uuid::Uuid::new_v4());
        if !value.contains(&d) {
            return d;
        }
    }
}

/// Whether the runner would take `line` as a workflow command: `::NAME…::` at its start
/// (blanks before it are skipped), or the older `##[NAME…]` anywhere in it.
pub fn could_be_command(line: &str) -> bool {
    line.trim_start().starts_with("::") || line.contains("##[")
}

/// Text from outside wharf (a build's output, a registry's or daemon's message, a value from
/// the environment) made inert for the runner: when `always`, or when a line of it could be
/// taken for a workflow command, it is wrapped in `::stop-commands::TOKEN` … `::TOKEN::`, with a
/// random token the text does not contain, so the runner shows every line and runs none.
pub fn inert(text: &str, always: bool) -> std::borrow::Cow<'_, str> {
    if !always && !text.lines().any(could_be_command) {
        return std::borrow::Cow::Borrowed(text);
    }
    let token = loop {
        let t = uuid::Uuid::new_v4().simple().to_string();
        if !text.contains(&t) {
            break t;
        }
    };
    std::borrow::Cow::Owned(format!("::stop-commands::{token}\n{text}\n::{token}::"))
}

/// A JSON line made inert for the runner without leaving JSON: no JSON line starts with `::`,
/// and a `#` can only be inside a string, where `\u0023` is the same character.
pub fn inert_json(line: &str) -> std::borrow::Cow<'_, str> {
    if line.contains("##[") {
        std::borrow::Cow::Owned(line.replace("##[", "#\\u0023["))
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// `::add-mask::SECRET`: from here on the runner shows `***` wherever the secret would appear
/// in the log (as the ECR login action does for the tokens it obtains). Written straight to
/// stderr, as one write, when running in GitHub Actions.
pub fn mask(secret: &str) {
    if secret.is_empty() || var("GITHUB_ACTIONS").as_deref() != Some("true") {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "::add-mask::{}", escape_data(secret));
}

/// Masks a registry login's secrets in GitHub Actions: its password (the token), and the
/// token in the `user:password` base64 form it is issued and sent in.
pub fn mask_login(login: &wharf_pusher::login::Login) {
    use secrecy::ExposeSecret;
    mask(login.password.expose_secret());
    mask(login.token().expose_secret());
}

/// The escaping of a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The escaping of a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A markdown table cell: pipes escaped, line breaks flattened.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(dir: &Path) -> Actions {
        Actions {
            summary: Some(dir.join("summary.md")),
            output: Some(dir.join("output")),
            workspace: Some(dir.to_path_buf()),
        }
    }

    #[test]
    fn commands_escape_their_data_and_properties() {
        let a = actions(Path::new("/repo"));
        let at = Location {
            file: "/repo/deploy/compose.yaml".into(),
            line: Some(3),
            column: Some(7),
        };
        assert_eq!(
            a.error("a, b: c", "100% wrong\nsecond line", Some(&at)),
            "::error file=deploy/compose.yaml,line=3,col=7,title=a%2C b%3A c::100%25 wrong%0Asecond line"
        );
        assert_eq!(Actions::group("api: build"), "::group::api: build");
        assert_eq!(Actions::warning("x\r\ny"), "::warning::x%0D%0Ay");
    }

    #[test]
    fn outputs_use_a_delimiter_absent_from_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let a = actions(dir.path());
        let json = "{\n  \"a\": 1\n}";
        a.set_outputs(&[
            ("manifest".into(), json.into()),
            ("image-api".into(), "r/a@sha256:00".into()),
        ])
        .unwrap();
        a.set_outputs(&[("more".into(), "x".into())]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("output")).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        let (name, delimiter) = first.split_once("<<").unwrap();
        assert_eq!(name, "manifest");
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        assert_eq!(value.join("\n"), json);
        let second = lines.next().unwrap();
        assert!(second.starts_with("image-api<<ghadelimiter_"), "{second}");
        assert!(text.contains("\nmore<<"), "appended, not replaced: {text}");
    }

    #[test]
    fn text_that_could_run_a_command_is_wrapped_in_stop_commands() {
        for line in [
            "::add-mask::abc",
            "  ::set-output name=x::y",
            "[api] ##[add-mask]abc",
            "step 3 ##[set-output name=x;]y",
        ] {
            assert!(could_be_command(line), "{line}");
            let text = format!("before\n{line}\nafter");
            let wrapped = inert(&text, false);
            let lines: Vec<&str> = wrapped.lines().collect();
            let token = lines[0].strip_prefix("::stop-commands::").unwrap();
            assert_eq!(token.len(), 32);
            assert_eq!(lines[1..4], ["before", line, "after"]);
            assert_eq!(lines[4], format!("::{token}::"));
        }
        for line in ["[api] building", "a::b", "error: x :: y", "# comment [x]"] {
            assert!(!could_be_command(line), "{line}");
            assert_eq!(inert(line, false), line);
        }
        assert!(inert("plain build output", true).starts_with("::stop-commands::"));
        assert_ne!(
            inert("x", true).lines().next(),
            inert("x", true).lines().next(),
            "a new token each time"
        );
    }

    #[test]
    fn json_lines_stay_json_and_inert() {
        let line = serde_json::json!({"event": "output", "message": "##[add-mask]abc"}).to_string();
        let safe = inert_json(&line);
        assert!(!safe.contains("##["), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["message"], "##[add-mask]abc");
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
