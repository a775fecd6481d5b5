//! Streams a context folder the way `wharf build` does, for measuring peak memory.
//!
//! `stream-context DIR null` reads the archive stream and drops it (the context module alone);
//! `stream-context DIR daemon TAG` builds DIR's Dockerfile with BuildKit, tagged TAG: the daemon
//! reads the context through wharf's BuildKit session, as with `wharf build`.

use futures_util::StreamExt;
use std::path::PathBuf;
use std::process::ExitCode;
use wharf_builder::build::{BuildRequest, BuilderKind};
use wharf_builder::context::Context;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, mode) = match args.as_slice() {
        [dir, mode, ..] => (PathBuf::from(dir), mode.as_str()),
        _ => {
            eprintln!("usage: stream-context DIR null | stream-context DIR daemon TAG");
            return ExitCode::from(2);
        }
    };
    let ctx = match Context::prepare(&dir, None, BuilderKind::BuildKit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match mode {
        "null" => {
            let mut stream = ctx.stream();
            let mut bytes: u64 = 0;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => bytes += c.len() as u64,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            println!("streamed {bytes} bytes");
        }
        "daemon" => {
            let tag = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "wharf-bench/context:latest".into());
            let (docker, _) = match wharf_builder::daemon::connect().await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let request = BuildRequest {
                tag,
                dockerfile: ctx.dockerfile().to_string(),
                builder: BuilderKind::BuildKit,
                ..Default::default()
            };
            if let Err(e) =
                wharf_builder::build::build(&docker, &request, &ctx, |l| eprintln!("{l}")).await
            {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            println!("built {}", request.tag);
        }
        other => {
            eprintln!("unknown mode {other}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
