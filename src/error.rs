//! Failures as the user sees them: one message with its causes, and the exit code of the
//! contract (2: usage or configuration, nothing was built or pushed; 1: a build, push or
//! verification failed).

use std::fmt;

/// Why wharf stopped.
#[derive(Debug)]
pub enum Failure {
    /// Usage or configuration error: exit 2.
    Config(anyhow::Error),
    /// A build, push or verification failed: exit 1.
    Failed(anyhow::Error),
    /// Ctrl-C stopped a release, which said what it left: exit 130.
    Interrupted(anyhow::Error),
}

impl Failure {
    pub fn config(e: impl Into<anyhow::Error>) -> Self {
        Failure::Config(e.into())
    }

    pub fn failed(e: impl Into<anyhow::Error>) -> Self {
        Failure::Failed(e.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) => 2,
            Failure::Failed(_) => 1,
            Failure::Interrupted(_) => 130,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Failure::Config(e) | Failure::Failed(e) | Failure::Interrupted(e)) = self;
        write!(f, "error: {e}")?;
        for cause in e.chain().skip(1) {
            write!(f, "\n  caused by: {cause}")?;
        }
        Ok(())
    }
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;
