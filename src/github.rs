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
    fn table_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
