//! The command line, as the command-line contract fixes it: docker compose's project options (accepted
//! before or after the command), then one command.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The version with the commit it was built from, when the build knew it (see build.rs).
const VERSION: &str = env!("WHARF_VERSION");

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version = VERSION,
    about = "Build every docker compose service and push it to ECR or any registry, all or nothing.",
    long_about = "Build every docker compose service and push it to ECR or any registry, all or nothing.\n\n\
        wharf reads the compose project exactly as docker compose does, builds each service with a \
        build section through the Docker daemon, and pushes it under its git SHA and `latest`: \
        `latest` moves only when every service's SHA tag has landed.",
    after_help = "Examples:\n  \
        wharf plan --registry ecr                  what would be pushed, no daemon, no AWS call\n  \
        wharf build                                build every service with a build section\n  \
        wharf build --push --registry ecr          build, then push {git_sha} and latest to ECR\n  \
        wharf verify --registry ecr                every expected image exists (the deploy gate)\n  \
        wharf completions bash > /etc/bash_completion.d/wharf\n\n\
        Environment: WHARF_REGISTRY, WHARF_TAGS, WHARF_SHARD, WHARF_PROGRESS, WHARF_TIMEOUT, RUST_LOG, and docker compose's \
        COMPOSE_FILE, COMPOSE_PROJECT_NAME, COMPOSE_PROFILES, COMPOSE_PATH_SEPARATOR.\n\
        Exit status: 0 success, 1 a build, push or verification failed, 2 usage or configuration \
        error (nothing was built or pushed), 130 interrupted.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectArgs,

    /// More output (-v: build logs in full, -vv: debug traces). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output options")]
    pub verbose: u8,

    /// Progress on stderr: `auto` (a live display on a terminal outside CI, else plain),
    /// `tty`, `plain` (one line per event, for CI logs) or `json` (JSON lines, for other tools).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "WHARF_PROGRESS",
        value_name = "MODE",
        help_heading = "Output options"
    )]
    pub progress: ProgressChoice,

    /// The deadline of each registry, AWS and daemon request (e.g. 15s, 1m). A push that
    /// reports nothing for 20 times as long, or a build for 120 times as long, is stopped too
    /// (default 15s: 5 and 30 minutes).
    #[arg(
        long,
        global = true,
        env = "WHARF_TIMEOUT",
        value_name = "DURATION",
        value_parser = wharf_pusher::timeouts::parse_duration,
        help_heading = "Output options"
    )]
    pub timeout: Option<std::time::Duration>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressChoice {
    /// `tty` when stderr is a terminal and CI is not set, else `plain`.
    #[default]
    Auto,
    /// A live display: one line per service and an overall line.
    Tty,
    /// One line per event, each naming its service.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The project options of docker compose, with the same meaning and environment variables.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Project options (as docker compose)")]
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
    #[command(after_help = "Examples:\n  \
            wharf config                                        the project as YAML\n  \
            wharf config --format json                          … as JSON\n  \
            wharf -f compose.yaml -f compose.prod.yaml config --images\n  \
            wharf --profile tools config --services            the services of a profile\n  \
            wharf config --lock-image-digests --registry ecr > release.yml   this commit's images, by digest\n    \
            (then: docker compose -f compose.yaml -f release.yml up -d)")]
    Config(ConfigArgs),
    /// Show what build and push would do, with no daemon and no AWS call.
    #[command(after_help = "Examples:\n  \
            wharf plan                                          images where their compose names say\n  \
            wharf plan --registry ecr                           to the caller's private ECR\n  \
            wharf plan --registry public.ecr.aws/my-alias       to ECR Public\n  \
            wharf plan --format json --tag '{git_sha}' --tag latest   for a review or a script")]
    Plan(PlanArgs),
    /// Build the services through the Docker daemon (with --push: push them too).
    #[command(after_help = "Examples:\n  \
            wharf build                                         every service with a build section\n  \
            wharf build api worker                              only these (and nothing else)\n  \
            wharf build -v api                                  with the build output in full\n  \
            wharf build --push --registry ecr --manifest images.json   the CI one-liner\n  \
            wharf build --push --registry ecr --create-repositories    first release to a new account\n\n\
            Exit status: 0 built (and pushed), 1 a build or push failed (each failing service named), \
            2 usage or configuration error (nothing was built or pushed), 130 interrupted.")]
    Build(BuildArgs),
    /// Push images already built, identity tags first, then the moving tags.
    #[command(after_help = "Examples:\n  \
            wharf push --registry ecr                           images built earlier by `wharf build`\n  \
            wharf push --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com api\n  \
            wharf push --registry 127.0.0.1:5000 --tag dev     any registry, one moving tag")]
    Push(PushArgs),
    /// Check that every expected image reference exists in its registry (the pre-deploy gate);
    /// with ECS services, that they run this release (the post-deploy gate).
    #[command(after_help = "Examples:\n  \
            wharf verify --registry ecr                         this commit's images are all there\n  \
            GITHUB_SHA=$SHA wharf verify --tag 'prod-{git_sha}' --tag prod-latest\n  \
            wharf verify --registry ecr --manifest -            … and print their digests\n  \
            wharf verify --registry ecr --ecs-service prod/web --wait 15m   after the deploy\n\n\
            Exit status: 0 all present (and running), 1 some missing or not running (each named), \
            2 usage or configuration error (an unknown ECS cluster or service too).")]
    Verify(VerifyArgs),
    /// Render a deploy file with this release's images pinned by digest.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            wharf render ecs-task-definition web.json --registry ecr --output web.rendered.json\n  \
            aws ecs describe-task-definition --task-definition web --query taskDefinition \\\n    \
            | wharf render ecs-task-definition - --registry ecr > task-definition.json"
    )]
    Render(RenderCommand),
    /// Move the moving tags onto a commit's release once every identity tag of it is there:
    /// the fan-in of a sharded release, a rollback, a promotion to another registry.
    #[command(after_help = "Examples:\n  \
            wharf promote --registry ecr                  after every shard of this commit\n  \
            wharf promote --registry ecr --commit 3f2a9c1 rollback: latest back on an older release\n  \
            wharf promote --registry ecr --tag '{git_sha}' --tag prod-latest\n  \
            wharf promote --registry ecr --to 210987654321.dkr.ecr.eu-west-1.amazonaws.com\n\n\
            It never builds. Exit status: 0 moved, 1 a service's release of the commit is missing, \
            untrusted or could not be copied (each named; nothing moved) or a moving tag could not move \
            (the others put back), 2 usage or configuration error, 130 interrupted.")]
    Promote(PromoteArgs),
    /// Print a shell completion script to stdout.
    #[command(after_help = "Examples:\n  \
            wharf completions bash > /etc/bash_completion.d/wharf\n  \
            wharf completions zsh > \"${fpath[1]}/_wharf\"\n  \
            wharf completions fish > ~/.config/fish/completions/wharf.fish")]
    Completions(CompletionsArgs),
    // --- adoption: iam-policy and init ---
    /// Print the least-privilege IAM policy this project's release needs.
    #[command(
        name = "iam-policy",
        long_about = "Print the least-privilege IAM policy this project's release needs: the ECR \
            actions to push and read manifests on exactly the project's repositories, \
            ecr:GetAuthorizationToken (which takes only `*`), repository creation only when \
            configured, ECR Public's token actions when a public target is configured, and the \
            ECS reads of `verify --ecs-service` when ECS services are configured. No AWS call. \
            With `--registry ecr` the account is the caller's, unknown offline: its ARNs read \
            `*` there (name the registry host for exact ARNs).",
        after_help = "Examples:\n  \
            wharf iam-policy --registry 123456789012.dkr.ecr.us-east-1.amazonaws.com\n  \
            wharf iam-policy --create-repositories --ecs-service prod/api > policy.json\n  \
            aws iam put-role-policy --role-name ci-release --policy-name wharf \\\n    \
            --policy-document \"$(wharf iam-policy)\""
    )]
    IamPolicy(IamPolicyArgs),
    /// Set up an existing compose project: its x-wharf block and a release workflow.
    #[command(
        long_about = "Set up an existing compose project for wharf: print the top-level x-wharf \
            block for the registry and tags chosen, and a GitHub Actions release workflow that \
            runs wharf's action with OIDC credentials (actions pinned by commit). With --write, \
            append the block to the compose file and write .github/workflows/release.yml at the \
            repository's root; an existing block or workflow is replaced only with --force.",
        after_help = "Examples:\n  \
            wharf init                                                  print, for ECR of the caller's account\n  \
            wharf init --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com --write\n  \
            wharf init --tag '{git_short_sha}' --tag stage-latest --branch develop --write --force"
    )]
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The registry: `ecr`, ACCOUNT.dkr.ecr.REGION.amazonaws.com, public.ecr.aws/ALIAS or
    /// HOST[:PORT][/NAMESPACE].
    #[arg(long, value_name = "REG", default_value = "ecr")]
    pub registry: String,
    /// Tag template (repeatable).
    #[arg(long = "tag", value_name = "TEMPLATE", default_values_t = ["{git_sha}".to_string(), "latest".to_string()])]
    pub tags: Vec<String>,
    /// Create missing repositories on release.
    #[arg(long)]
    pub create_repositories: bool,
    /// The branch whose pushes release.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub branch: String,
    /// The IAM role the workflow assumes (default: the repository variable
    /// WHARF_RELEASE_ROLE_ARN).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The AWS region of `--registry ecr` (default: the repository variable AWS_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Write the block into the compose file and the workflow file instead of printing them.
    #[arg(long)]
    pub write: bool,
    /// With --write: replace an existing x-wharf block and workflow.
    #[arg(long, requires = "write")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// Output format: the policy document as indented JSON, as IAM takes it.
    #[arg(long, value_enum, default_value_t)]
    pub format: PolicyFormat,
    /// An ECS service `verify` checks after the deploy (repeatable; default:
    /// x-wharf.ecs_services).
    #[arg(long = "ecs-service", value_name = "CLUSTER/SERVICE")]
    pub ecs_services: Vec<String>,
    /// Services (default: every service with a build section).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PolicyFormat {
    /// The policy document (JSON, indented).
    #[default]
    Json,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
}

/// Where images go and under which tags.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Target options")]
pub struct TargetArgs {
    /// Registry: `ecr` (private ECR of the caller's account), ACCOUNT.dkr.ecr.REGION.amazonaws.com,
    /// public.ecr.aws/ALIAS, or HOST[:PORT][/NAMESPACE]. Default: the registry in each image name.
    #[arg(long, env = "WHARF_REGISTRY", value_name = "REG")]
    pub registry: Option<String>,
    /// Tag template (repeatable): {git_sha}, {git_short_sha}, {git_branch}, {compose_tag},
    /// {timestamp}, {env:NAME}. Default: {git_sha} and latest.
    #[arg(
        long = "tag",
        env = "WHARF_TAGS",
        value_delimiter = ',',
        value_name = "TEMPLATE"
    )]
    pub tags: Vec<String>,
    /// Repository template: {image_name}, {project}, {service}. Default: {image_name}, or
    /// {project}-{service} for a service without `image:`.
    #[arg(long, value_name = "TEMPLATE")]
    pub repository: Option<String>,
    /// Create missing ECR repositories (scan on push, lifecycle policy from x-wharf).
    #[arg(long)]
    pub create_repositories: bool,
    /// Allow a work tree with uncommitted changes: identity tags then end in `-dirty`.
    #[arg(long)]
    pub allow_dirty: bool,
    // Multi-platform images.
    /// Platforms of this run, comma-separated (linux/amd64,linux/arm64): only services that
    /// declare one of them, and only those platforms. Default: each service's own.
    #[arg(long = "platform", env = "WHARF_PLATFORMS", value_name = "LIST")]
    pub platforms: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: PlanFormat,
    /// Log in and ask the registry which services' inputs it already holds (those `build
    /// --push` tags instead of building); without it, a plan talks to no daemon, AWS or
    /// registry.
    #[arg(long)]
    pub check_registry: bool,
    /// The builder `build` would use (the input digests name it).
    #[arg(long, value_enum, default_value_t)]
    pub builder: BuilderChoice,
    /// Show what shard K of N (`build --push --shard K/N`) would release.
    #[arg(long, env = "WHARF_SHARD", value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<wharf_pusher::shard::Shard>,
    /// Services (default: every service with a build section).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum BuilderChoice {
    /// BuildKit: cache, secret and ssh mounts, parallel stages.
    #[default]
    Buildkit,
    /// The daemon's classic builder, for daemons without BuildKit.
    Classic,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Push the images after building them (the CI one-liner).
    #[arg(long)]
    pub push: bool,
    /// Write the manifest of pushed images (JSON) to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// How many services build at once (default: two per core, 4 to 8).
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Keep building the other services after a failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Which builder of the daemon runs the builds.
    #[arg(long, value_enum, default_value_t)]
    pub builder: BuilderChoice,
    /// With --push: build every service, even those whose inputs match an image already in
    /// the registry (which are otherwise only tagged there, not rebuilt).
    #[arg(long, env = "WHARF_NO_SKIP")]
    pub no_skip: bool,
    /// With --push: release only shard K of N (1/2, 2/2 …) of the selected services, identity
    /// and inputs tags only; the moving tags are left to `wharf promote`. A service built FROM
    /// another service's image goes to its base's shard.
    #[arg(long, env = "WHARF_SHARD", value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<wharf_pusher::shard::Shard>,
    /// Services (default: every service with a build section).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The commit whose release to promote (a SHA, full or abbreviated as git knows it;
    /// default: the current commit). An older one is a rollback.
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Copy the release to this registry first (through the registry API; digests stay the
    /// same), then move the moving tags there: `ecr`, ACCOUNT.dkr.ecr.REGION.amazonaws.com,
    /// public.ecr.aws/ALIAS, or HOST[:PORT][/NAMESPACE].
    #[arg(long, value_name = "REGISTRY")]
    pub to: Option<String>,
    /// Write the manifest of the promoted images (JSON) to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Services (default: every service with a build section).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `--shard K/N`: one runner's share of a release.
fn parse_shard(text: &str) -> Result<wharf_pusher::shard::Shard, String> {
    text.parse()
        .map_err(|e: wharf_pusher::shard::ShardError| e.to_string())
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Write the manifest of pushed images (JSON) to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// How many services push at once.
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Services (default: every service with a build section).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Write the manifest of the verified images (JSON) to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Also check that this ECS service's primary deployment runs this release's images, in
    /// its task definition and its running tasks (repeatable; default: x-wharf.ecs_services).
    #[arg(long = "ecs-service", value_name = "CLUSTER/SERVICE")]
    pub ecs_services: Vec<String>,
    /// Wait up to DURATION (`90s`, `15m`) for each ECS service's rollout to complete before
    /// checking it; a failed rollout fails with ECS's reason.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<std::time::Duration>,
    /// Check the registry only, not the ECS services of x-wharf.ecs_services (the pre-deploy
    /// gate of a project that lists them).
    #[arg(long, conflicts_with_all = ["ecs_services", "wait"])]
    pub registry_only: bool,
    /// Services (default: every service with a build section).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `--wait`: a duration as `90s`, `15m`, `1h30m`, or a number of seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 30s, 15m or 1h)"))
}

#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// An ECS task definition with each container's image pinned to this release's digest.
    #[command(
        after_help = "A container runs the compose service of its name, or the one whose \
            x-wharf.ecs_container names it. Every other field, key order and indentation stay as \
            they were, so the rendered file's diff is the image lines.\n\n\
            Examples:\n  \
            aws ecs describe-task-definition --task-definition web > web.json\n  \
            wharf render ecs-task-definition web.json --registry ecr --output web.rendered.json\n  \
            aws ecs describe-task-definition --task-definition web --query taskDefinition \\\n    \
            | wharf render ecs-task-definition - --registry ecr > task-definition.json\n\n\
            Exit status: 0 rendered, 1 a service has no release of the commit (each named), \
            2 usage or configuration error (a file that is not a task definition)."
    )]
    EcsTaskDefinition(RenderTaskDefinitionArgs),
}

#[derive(Debug, Args)]
pub struct RenderTaskDefinitionArgs {
    /// The task definition: `aws ecs describe-task-definition` output, or the input of
    /// `aws ecs register-task-definition --cli-input-json`; `-` for standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write the rendered task definition to FILE instead of standard output (in GitHub
    /// Actions, the step output `task-definition` names it).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The commit whose release to pin (full SHA; default: the current commit).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
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
    /// Only validate the configuration, don't print anything.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print an override file pinning each released service's image to the digest of this
    /// commit's release (`repo:tag@sha256:…`), as `docker compose config --lock-image-digests`.
    #[arg(long, conflicts_with_all = ["images", "services", "quiet"])]
    pub lock_image_digests: bool,
    /// With --lock-image-digests: the commit whose release to pin (full SHA; default: the
    /// current commit).
    #[arg(long, value_name = "SHA", requires = "lock_image_digests")]
    pub commit: Option<String>,
    /// Services to print (default: all).
    #[arg(value_name = "SERVICE")]
    pub service: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}
