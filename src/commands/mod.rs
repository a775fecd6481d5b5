//! One module per command; `run` dispatches.

pub mod config;

use crate::cli::{Cli, Command};
use crate::error::Result;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Config(args) => config::run(&cli.project, &args),
    }
}
