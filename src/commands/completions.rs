//! `wharf completions SHELL`: the shell completion script, generated from the command line's
//! own definition so it never drifts from it.

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Failure, Result};
use clap::CommandFactory;

pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "wharf", &mut script);
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|_| stdout.flush())
        .map_err(|e| Failure::config(anyhow::anyhow!("cannot write to standard output: {e}")))
}
