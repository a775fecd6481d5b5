//! wharf-deploy: hands a release to the deploy.
//!
//! - [`reference`] splits image references and pins a release's image (`repo:tag@sha256:…`).
//! - [`containers`] decides which compose service a task definition's container runs.
//! - [`task_definition`] renders a task definition file with the release's images, changing
//!   no other byte of it (so its diff is the image lines).
//! - [`ecs`] reads an ECS service, its primary deployment, task definition and running tasks
//!   through the ECS API, and waits for a rollout ([`rollout`] judges ECS's answer).
//! - [`check`] judges whether what ECS runs is the release: the post-deploy gate.

pub mod check;
pub mod containers;
pub mod ecs;
pub mod error;
pub mod reference;
pub mod rollout;
pub mod task_definition;

pub use error::DeployError;
pub use reference::{ImageRef, Pin};
