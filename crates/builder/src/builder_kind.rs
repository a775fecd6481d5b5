//! Which of the daemon's builders reads a build: the context is assembled for it (each reads
//! `.dockerignore` and an outside Dockerfile its own way) and the request is sent for it.
//! A module of its own because both the context and the build depend on it.

/// Which of the daemon's builders runs the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderKind {
    /// BuildKit (the default): cache/secret/ssh mounts, parallel stages.
    #[default]
    BuildKit,
    /// The classic builder, for daemons without BuildKit.
    Classic,
}
