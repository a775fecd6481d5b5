//! wharf-pusher: logs into private ECR, ECR Public or any registry, and pushes images.
//!
//! How the pieces fit:
//! - [`registry`] parses where images go (`ecr`, `ACCOUNT.dkr.ecr.REGION.amazonaws.com`,
//!   `public.ecr.aws/ALIAS`, any `HOST[:PORT][/NAMESPACE]`).
//! - [`login`] turns a registry into [`login::Login`] credentials: an ECR token through the AWS
//!   SDK (the registry host taken from the token's proxy endpoint), an ECR Public token, or the
//!   Docker config and its credential helpers. Credentials live in memory only, wrapped in
//!   [`secrecy`] types so they never reach a log or an error message.
//! - [`target`] decides each service's registry, repository and tags ([`template`] renders
//!   the tag templates, [`git`] finds the commit they name).
//! - [`push`] pushes a tag through the Docker daemon (bollard, `X-Registry-Auth`).
//! - [`api`] reads the registry's HTTP API (manifest digests), which is how pushes are checked
//!   and how `verify` works without a daemon.
//! - [`release`] is the release itself, all or nothing: logins and repository checks before
//!   any build, the skip decision, phase 1 (identity tags), the gate, phase 2 (moving tags,
//!   put back when one cannot move), the manifest. It tells what happens as typed
//!   [`events`], and every request it makes has a deadline ([`timeouts`]).
//! - [`local_index`] makes a multi-platform image's local name hold every platform (the
//!   released index), on engines whose image store can (containerd).
//! - [`trust`] decides whether an image found in the registry (by its inputs tag) may be
//!   released instead of a build: only when an identity tag of the commit that built it names
//!   it too.
//! - [`shard`] splits a release between the runners of a CI matrix (`--shard K/N`);
//!   [`promote`] is the fan-in after them: it checks a commit's release is whole in the
//!   registry (copying it to another registry first with `--to`) and moves the moving tags.

pub mod api;
pub mod aws_failure;
pub mod error;
pub mod events;
pub mod git;
pub mod iam_policy;
pub mod index;
pub mod local_index;
pub mod login;
pub mod promote;
pub mod push;
pub mod registry;
pub mod release;
pub mod repositories;
pub mod shard;
pub mod target;
pub mod template;
pub mod timeouts;
pub mod tls;
pub mod trust;

pub use error::Error;
