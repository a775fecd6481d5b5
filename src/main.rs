//! wharf: build every docker compose service and push it, all or nothing.
//!
//! The binary is thin: `cli` parses the command line, each `commands::*` module runs one
//! command on top of the wharf-compose, wharf-builder and wharf-pusher libraries, `progress`
//! shows what happens (a live display, plain lines or JSON lines on stderr), `deploy` pins a
//! release for the deploy hand-offs (lock, render, the ECS check), `github` adds
//! GitHub Actions' groups, annotations, job summary and step outputs, and `error` renders
//! failures with their context and exit code.

mod cli;
mod commands;
mod deploy;
mod error;
mod github;
mod log_guard;
mod progress;
mod release;
mod shard;

use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0, usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let (mode, downgraded) = progress::choose(cli.progress);
    let reporter = Arc::new(progress::Reporter::new(
        mode,
        cli.verbose > 0,
        github::Actions::from_env(),
    ));
    init_tracing(cli.verbose, &reporter);
    if let Some(why) = downgraded {
        reporter.warn(why);
    }
    let interrupt = wharf_pusher::release::Interrupt::new();
    progress::exit_on_interrupt(reporter.clone(), interrupt.clone());
    let timeout = cli.timeout;
    let result = commands::run(
        cli,
        commands::Run {
            reporter: reporter.clone(),
            interrupt,
            timeout,
        },
    );
    reporter.finish(result.as_ref().err());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            reporter.failure(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// The AWS SDK's tracing targets (prefixes).
const AWS_SDK_TARGETS: &[&str] = &[
    "aws_config",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_runtime",
    "aws_sdk_ecr",
    "aws_sdk_ecrpublic",
    "aws_sdk_ecs",
    "aws_sdk_sts",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_credential_types",
    "aws_sigv4",
];

fn init_tracing(verbose: u8, reporter: &progress::Reporter) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::FilterExt;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // The AWS SDK warns about every credential and region source it tries (IMDS on a laptop)
    // with a debug dump of the answer; wharf reports the failure that matters itself. Its
    // traces show from -vv on.
    let default = if verbose < 2 {
        AWS_SDK_TARGETS
            .iter()
            .fold(default.to_string(), |f, t| format!("{f},{t}=error"))
    } else {
        default.to_string()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = reporter.mode() != progress::Mode::Json
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(reporter.log_writer())
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .with_filter(filter.and(log_guard::secret_guard()));
    tracing_subscriber::registry().with(layer).init();
}
