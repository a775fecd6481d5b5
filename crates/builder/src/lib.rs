//! wharf-builder: builds compose services through the Docker daemon.
//!
//! How the pieces fit:
//! - [`daemon`] finds and connects to the daemon the docker CLI would use.
//! - [`context`] assembles a local build context exactly as Docker would (`.dockerignore`,
//!   links, modes) and streams it as a tar, never holding it whole in memory.
//! - [`service`] turns a compose service into a build request, checking every build field
//!   (all services at once, before anything is built) and finding which services' images
//!   others build `FROM`.
//! - [`build`] sends one build request (BuildKit or classic) with the context streamed as its
//!   body and reports the daemon's output.
//! - [`schedule`] builds many services: dependencies first, independent ones concurrently.

pub mod build;
pub mod context;
pub mod daemon;
pub mod schedule;
pub mod service;
