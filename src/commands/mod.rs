//! One module per command; `run` dispatches.

pub mod build;
pub mod config;
pub mod plan;
pub mod push;
pub mod verify;

use crate::cli::{Cli, Command, ProgressChoice};
use crate::error::Result;
use crate::progress::{Mode, Reporter};
use std::sync::Arc;

pub fn run(cli: Cli) -> Result<()> {
    let mode = match cli.progress {
        ProgressChoice::Plain => Mode::Plain,
        ProgressChoice::Json => Mode::Json,
    };
    let reporter = Arc::new(Reporter::new(mode, cli.verbose > 0));
    match &cli.command {
        Command::Config(args) => config::run(&cli.project, args),
        Command::Plan(args) => plan::run(&cli.project, args),
        Command::Build(args) => build::run(&cli.project, args, reporter),
        Command::Push(args) => push::run(&cli.project, args, reporter),
        Command::Verify(args) => verify::run(&cli.project, args, reporter),
    }
}
