//! The command line, as the command-line contract fixes it: docker compose's project options (accepted
//! before or after the command), then one command.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about = "Build every docker compose service and push it to ECR or any registry, all or nothing.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// More output (-v: build logs, -vv: debug traces). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The project options of docker compose, with the same meaning and environment variables.
#[derive(Debug, Args, Clone, Default)]
pub struct ProjectArgs {
    /// Compose configuration files, merged in order (default: compose.yaml or docker-compose.yml
    /// and its override file). Env: COMPOSE_FILE, separated by COMPOSE_PATH_SEPARATOR.
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Project name. Env: COMPOSE_PROJECT_NAME.
    #[arg(short = 'p', long = "project-name", global = true, value_name = "NAME")]
    pub project_name: Option<String>,

    /// Enable a profile (repeatable). Env: COMPOSE_PROFILES (comma-separated).
    #[arg(long = "profile", global = true, value_name = "NAME")]
    pub profiles: Vec<String>,

    /// An environment file, replacing the project's .env (repeatable).
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_files: Vec<PathBuf>,

    /// The project's working directory (default: the folder of the first compose file).
    #[arg(long = "project-directory", global = true, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the resolved project, as `docker compose config` does.
    Config(ConfigArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ConfigFormat {
    #[default]
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ConfigFormat,
    /// Print the image names, one per line.
    #[arg(long)]
    pub images: bool,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Services to print (default: all).
    #[arg(value_name = "SERVICE")]
    pub service: Vec<String>,
}
