//! wharf's integration tests, in one binary: the workspace links once for all of them, and
//! `support` is the one set of helpers they share. Most drive the real `wharf` binary against
//! the test bed (`scripts/testbed up`); `cargo test --test it MODULE::` runs one file's tests.

mod support;

mod additional_contexts;
mod aws_errors;
mod bed_e2e;
mod build;
mod build_fidelity;
mod cli_errors;
mod cli_github;
mod cli_help;
mod cli_plan;
mod cli_streams;
mod compose_conformance;
mod compose_errors;
mod context_conformance;
mod deploy;
mod doc_links;
mod faults;
mod github_files;
mod iam_policy;
mod init;
mod input_validation;
mod log_secrets;
mod module_graph;
mod planted_inputs;
mod platforms;
mod progress_interrupt;
mod progress_tty;
mod promote;
mod registry_proxy;
mod release;
mod release_faults;
mod resource_bounds;
mod skip;
mod workflow_commands;

// Reproducible images, kept bases and cache sources.
mod inline_cache;
mod reproducible;
