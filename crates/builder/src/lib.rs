//! wharf-builder: builds compose services through the Docker daemon.
//!
//! How the pieces fit:
//! - [`builder_kind`] names the daemon's two builders, which read contexts and requests
//!   differently.
//! - [`daemon`] finds and connects to the daemon the docker CLI would use.
//! - [`context`] assembles a local build context exactly as Docker would (`.dockerignore`,
//!   links, modes), as a session serves it or as a tar stream, never holding it whole in
//!   memory.
//! - [`service`] turns a compose service into a build request, checking every build field
//!   (all services at once, before anything is built) and finding which services' images
//!   others build `FROM`.
//! - [`session`] serves a BuildKit build's context, Dockerfile, registry credentials and
//!   secrets to the daemon over a session, as the docker clients do.
//! - [`named_contexts`] resolves `additional_contexts` for the daemon's build endpoint: each
//!   name to an image (folders built into helper images), the Dockerfile rewritten to use them.
//! - [`build`] sends one build request (BuildKit through a session, or classic with the
//!   context streamed as its body) and reports the daemon's output.
//! - [`labels`] are the labels docker compose writes on the images it builds.
//! - [`platform`] chooses the platform each image is built for, as docker compose does.
//! - [`inputs`] digests everything that decides a service's image, so that a release can
//!   skip services whose inputs did not change; `content_cache` remembers each context
//!   file's content digest between runs, so that an unchanged file is not read again.
//! - [`schedule`] builds many services: dependencies first, independent ones concurrently.

pub mod build;
pub mod builder_kind;
mod content_cache;
pub mod context;
pub mod daemon;
pub mod emulation;
pub mod engines;
mod entry_digest;
pub mod inputs;
pub mod labels;
pub mod named_contexts;
pub mod platform;
pub mod schedule;
pub mod service;
pub mod session;
mod ssh_engine;
