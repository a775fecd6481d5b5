//! What the user sees while wharf works: one line per event on stderr, each naming its service,
//! so CI logs read top to bottom (`--progress plain`), or JSON lines for other tools
//! (`--progress json`). stdout is kept for results.

use std::io::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Json,
}

/// Writes progress events to stderr.
pub struct Reporter {
    mode: Mode,
    /// Show every line of build output (`-v`), not only on failure.
    verbose: bool,
    out: Mutex<std::io::Stderr>,
}

impl Reporter {
    pub fn new(mode: Mode, verbose: bool) -> Reporter {
        Reporter {
            mode,
            verbose,
            out: Mutex::new(std::io::stderr()),
        }
    }

    pub fn verbose(&self) -> bool {
        self.verbose
    }

    fn emit(&self, service: Option<&str>, event: &str, text: &str, extra: &[(&str, &str)]) {
        let line = match self.mode {
            Mode::Plain => match service {
                Some(s) => format!("[{s}] {text}"),
                None => text.to_string(),
            },
            Mode::Json => {
                let mut m = serde_json::Map::new();
                m.insert("event".into(), event.into());
                if let Some(s) = service {
                    m.insert("service".into(), s.into());
                }
                m.insert("message".into(), text.into());
                for (k, v) in extra {
                    m.insert((*k).into(), (*v).into());
                }
                serde_json::Value::Object(m).to_string()
            }
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }

    /// A service-level event (`building`, `built`, `pushing`, `pushed`, `failed` …).
    pub fn service(&self, service: &str, event: &str, text: &str, extra: &[(&str, &str)]) {
        self.emit(Some(service), event, text, extra);
    }

    /// A line of a service's build or push output: shown with `-v` (the tail is shown anyway
    /// when the build fails).
    pub fn output(&self, service: &str, line: &str) {
        if self.verbose {
            self.emit(Some(service), "output", line, &[]);
        }
    }

    /// A project-level line (phases, summary).
    pub fn note(&self, event: &str, text: &str) {
        self.emit(None, event, text, &[]);
    }

    pub fn warn(&self, text: &str) {
        self.emit(None, "warning", &format!("warning: {text}"), &[]);
    }
}
