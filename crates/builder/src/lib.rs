//! wharf-builder: builds compose services through the Docker daemon.
//!
//! How the pieces fit:
//! - [`daemon`] finds and connects to the daemon the docker CLI would use.
//! - [`build`] sends one build request (BuildKit or classic) with the context streamed as its
//!   body and reports the daemon's output.

pub mod build;
pub mod context;
pub mod daemon;
