//! One module per command; `run` dispatches.

pub mod build;
pub mod completions;
pub mod config;
pub mod lock;
pub mod plan;
pub mod push;
pub mod render;
pub mod verify;
pub mod verify_ecs;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::progress::Reporter;
use std::sync::Arc;

pub fn run(cli: Cli, reporter: Arc<Reporter>) -> Result<()> {
    match &cli.command {
        Command::Config(args) if args.lock_image_digests => {
            lock::run(&cli.project, args, &reporter)
        }
        Command::Config(args) => config::run(&cli.project, args),
        Command::Plan(args) => plan::run(&cli.project, args),
        Command::Build(args) => build::run(&cli.project, args, reporter),
        Command::Push(args) => push::run(&cli.project, args, reporter),
        Command::Verify(args) => verify::run(&cli.project, args, reporter),
        Command::Render(command) => render::run(&cli.project, command, &reporter),
        Command::Completions(args) => completions::run(args),
    }
}
