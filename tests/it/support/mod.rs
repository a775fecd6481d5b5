//! What the integration tests share: the bed's coordinates, the wharf binary in a clean
//! environment, fixtures, the docker CLI's view of images, the registries' view of tags, and
//! proxies that stage faults in front of the bed's registries and daemon.
#![allow(dead_code)]

pub mod aws_stub;
pub mod bed;
pub mod daemon_proxy;
pub mod docker;
pub mod engine;
pub mod fixtures;
pub mod lint_tools;
pub mod manifest;
pub mod proxy;
pub mod registry;
pub mod registry_proxy;
pub mod wharf;

pub use bed::{bed, bed_var};
pub use docker::{compose, files_under, run_in};
pub use engine::{wharf_on, Engine};
pub use fixtures::{fake_sha, git, redact, two_service_project, unique, write};
pub use manifest::{digests, manifest_of, progress_events};
pub use registry::{ecr_login, served};
pub use wharf::{github_step, run, stderr, stdout, texts, wharf, wharf_bin, SHA};
