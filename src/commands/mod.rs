//! One module per command; `run` dispatches.

pub mod build;
pub mod completions;
pub mod config;
pub mod iam_policy;
pub mod init;
pub mod lock;
pub mod plan;
pub mod promote;
pub mod push;
pub mod render;
pub mod verify;
pub mod verify_ecs;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::progress::Reporter;
use std::sync::Arc;
use wharf_pusher::release::Interrupt;
use wharf_pusher::timeouts::Timeouts;

/// What every command that talks to registries or the daemon shares.
pub struct Run {
    pub reporter: Arc<Reporter>,
    /// Shared with the Ctrl-C handler: a release in phase 2 restores on the first Ctrl-C.
    pub interrupt: Interrupt,
    /// `--timeout`: the per-request deadline.
    pub timeout: Option<std::time::Duration>,
}

impl Run {
    /// The deadlines every request of the command runs under.
    pub fn timeouts(&self) -> Timeouts {
        self.timeout
            .map_or_else(Timeouts::default, Timeouts::from_request)
    }
}

pub fn run(cli: Cli, run: Run) -> Result<()> {
    match &cli.command {
        Command::Config(args) if args.lock_image_digests => lock::run(&cli.project, args, &run),
        Command::Config(args) => config::run(&cli.project, args),
        Command::Plan(args) => plan::run(&cli.project, args, &run),
        Command::Build(args) => build::run(&cli.project, args, &run),
        Command::Push(args) => push::run(&cli.project, args, &run),
        Command::Verify(args) => verify::run(&cli.project, args, &run),
        Command::Render(command) => render::run(&cli.project, command, &run),
        Command::Promote(args) => promote::run(&cli.project, args, &run),
        Command::Completions(args) => completions::run(args),
        Command::IamPolicy(args) => iam_policy::run(&cli.project, args),
        Command::Init(args) => init::run(&cli.project, args),
    }
}
