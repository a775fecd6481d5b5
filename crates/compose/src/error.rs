//! Why a project could not be loaded, as one complete message: the file, the line and column
//! where the YAML gives one, the key path, what compose says, and what to do about it.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem stopped loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No compose file was found or given.
    NoConfigFile,
    /// A file could not be read.
    Io,
    /// The YAML itself is malformed.
    Syntax,
    /// `${…}` could not be substituted (malformed, or a required variable is missing).
    Interpolation,
    /// The model breaks the compose specification (unknown key, wrong type…).
    Schema,
    /// Anything else compose refuses (bad `.env`, extends/include problems, undefined
    /// references, bad project name…).
    Invalid,
}

/// A loading error. `Display` is the whole human message; the parts are fields of
/// [`ErrorDetails`] (reached through `Deref`: `error.kind`, `error.file`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(Box<ErrorDetails>);

/// The parts of an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetails {
    pub kind: ErrorKind,
    /// The file the problem is in, when known.
    pub file: Option<PathBuf>,
    /// 1-based line and column in `file`.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The key path (`services.api.build.args.TAG`), when the problem is at one.
    pub key_path: Option<String>,
    /// The problem, in docker compose's words.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl std::error::Error for Error {}

impl std::ops::Deref for Error {
    type Target = ErrorDetails;
    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorDetails {
        &mut self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(col) = self.column {
                    write!(f, ":{col}")?;
                }
            }
            write!(f, ": ")?;
        }
        if let Some(key) = &self.key_path {
            if !self.message.contains(key.as_str()) {
                write!(f, "{key}: ")?;
            }
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorDetails {
            kind,
            file: None,
            line: None,
            column: None,
            key_path: None,
            message: message.into(),
            hint: None,
        }))
    }

    /// A YAML error, with the fix that fits it.
    pub(crate) fn syntax(
        file: Option<&str>,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    ) -> Self {
        let hint = if message.contains("already defined") {
            "remove or rename one of the duplicate keys"
        } else if message.contains("non-string key") {
            "quote the key to make it a string"
        } else if message.contains("map merge") {
            "`<<` must refer to a mapping, or a list of mappings"
        } else if message.contains("anchor") {
            "define the anchor (&name) before its aliases (*name), and not inside itself"
        } else if message.contains("aliasing") {
            "expand fewer aliases"
        } else if message.contains("cannot decode") {
            "remove the explicit tag or fix the value"
        } else {
            "fix the YAML syntax at that position"
        };
        let mut e = Error::new(ErrorKind::Syntax, message).hint(hint);
        e.file = file.map(PathBuf::from);
        e.line = line;
        e.column = column;
        e
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        if self.file.is_none() {
            self.file = Some(file.into());
        }
        self
    }

    pub(crate) fn at_key(mut self, path: &[String]) -> Self {
        if self.key_path.is_none() && !path.is_empty() {
            self.key_path = Some(path.join("."));
        }
        self
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        if self.hint.is_none() {
            self.hint = Some(hint.into());
        }
        self
    }

    pub(crate) fn io(path: &str, e: &std::io::Error) -> Self {
        let message = match e.kind() {
            std::io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
            std::io::ErrorKind::PermissionDenied => format!("open {path}: permission denied"),
            _ if is_dir(path) => format!("read {path}: is a directory"),
            _ => format!("read {path}: {e}"),
        };
        Error::new(ErrorKind::Io, message).hint("check that the file exists and is readable")
    }
}

impl Error {
    /// A file of the project that could not be read (see [`crate::files`]).
    pub(crate) fn file(path: &str, e: &crate::files::FileError) -> Self {
        match e.io_error() {
            Some(io) => Error::io(path, io),
            None => Error::new(ErrorKind::Io, e.to_string())
                .hint("name a regular file (or a pipe) of a sensible size"),
        }
    }
}

fn is_dir(path: &str) -> bool {
    std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false)
}
