//! Command-line arguments.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Compute container image tags from git, CI and SemVer, and refuse to overwrite immutable tags.
#[derive(Debug, Parser)]
#[command(
    name = "tagguard",
    version,
    max_term_width = 100,
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 refused by policy.\nDocs: https://github.com/tagguard/tagguard#readme"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute the tags of this build (no network)
    Tags(Box<TagsArgs>),
    /// Look up every computed tag in the registry: create, unchanged, move, or refuse
    Check(Box<CheckArgs>),
    /// Check, then retag and push only what the policy allows, and read every tag back
    Push(Box<PushArgs>),
    /// Check, print or explain policy files
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Git hooks that guard release tags before they are pushed
    #[command(subcommand)]
    Hook(HookCommand),
    /// Report the tags in the registry that break the policy's promises
    Audit(Box<AuditArgs>),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Findings: floating-behind, version-label, revision-label, moved (see docs/audit.md).\nExit codes: 0 no finding, 1 error, 2 usage, 3 findings."
)]
pub struct AuditArgs {
    /// Policy file [default: .tagguard.yml in --repo, else the embedded default]
    #[arg(long, env = "TAGGUARD_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Image repository to audit, instead of the policy's (repeatable, or comma-separated)
    #[arg(
        long = "image",
        env = "TAGGUARD_IMAGES",
        value_delimiter = ',',
        value_name = "IMAGE"
    )]
    pub images: Vec<String>,
    /// The checkout whose .tagguard.yml is the policy when --policy is not given
    #[arg(long, env = "TAGGUARD_REPO", value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, env = "TAGGUARD_FORMAT")]
    pub format: Format,
    /// Requests in flight at once per repository
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Run as git's pre-push hook: reads the pushed refs on stdin, as githooks(5) describes
    #[command(
        after_help = "Refuses (exit 3) pushing a release tag (the policy's `release.git-tag`) that is not valid\nSemVer, that moves or deletes a release tag the remote has, or whose immutable image tags\nexist in the registry for another commit (policy `hooks.pre-push.registry`: strict, warn or\noff). Branch pushes pass untouched. Registry credentials as for `check`."
    )]
    PrePush(PrePushArgs),
    /// Install the pre-push hook into this repository (respects core.hooksPath)
    Install {
        /// Keep an existing pre-push hook and run it before tagguard's check
        #[arg(long)]
        chain: bool,
        /// The git checkout to install into
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct PrePushArgs {
    /// The remote's name, as git passes it (absent under the pre-commit framework)
    pub remote: Option<String>,
    /// The remote's URL, as git passes it
    pub url: Option<String>,
    /// Policy file [default: .tagguard.yml in the repository root, else the embedded default]
    #[arg(long, env = "TAGGUARD_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The git checkout being pushed from
    #[arg(long, env = "TAGGUARD_REPO", value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Image to look the release up in, instead of the policy's (repeatable, or comma-separated)
    #[arg(
        long = "image",
        env = "TAGGUARD_IMAGES",
        value_delimiter = ',',
        value_name = "IMAGE"
    )]
    pub images: Vec<String>,
    /// Registry host that may be spoken to over plain HTTP (repeatable; loopback always may)
    #[arg(
        long,
        value_name = "HOST",
        env = "TAGGUARD_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registry: Vec<String>,
    /// PEM CA bundle to trust for the registries, in addition to the system's
    #[arg(long, value_name = "FILE", env = "TAGGUARD_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds allowed for each request to the registry (a push should not wait long)
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and report every problem in it
    Check {
        /// The policy file [default: .tagguard.yml in the repository root]
        file: Option<PathBuf>,
    },
    /// Print the policy file's JSON Schema (for yaml-language-server and linters)
    Schema,
    /// Print the embedded default policy (used when there is no .tagguard.yml)
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable; for `tags`, one tag per line
    Text,
    /// One JSON object on stdout
    Json,
    /// Outputs written to $GITHUB_OUTPUT (and text on stdout)
    Github,
    /// dotenv lines for a GitLab `artifacts:reports:dotenv` file
    Gitlab,
}

#[derive(Debug, Args)]
pub struct TagsArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, env = "TAGGUARD_FORMAT")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// The image to be pushed: a registry reference (tag or digest), docker:IMAGE or
    /// oci:DIR[:REF]; without it, an existing immutable tag is refused
    #[arg(long, env = "TAGGUARD_SOURCE", value_name = "SOURCE")]
    pub source: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, env = "TAGGUARD_FORMAT")]
    pub format: Format,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// The image to push: a registry reference (host/repo@sha256:… or host/repo:tag),
    /// docker:IMAGE (local Docker engine) or oci:DIR[:REF] (OCI image layout)
    #[arg(long, env = "TAGGUARD_SOURCE", value_name = "SOURCE")]
    pub source: String,
    /// Decide and print the plan, but write nothing
    #[arg(long, env = "TAGGUARD_DRY_RUN")]
    pub dry_run: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, env = "TAGGUARD_FORMAT")]
    pub format: Format,
    /// Upload chunk size in MiB for copied blobs
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub chunk_size: u64,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach registries.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Registry username (with --password-stdin) [default: TAGGUARD_USERNAME, docker/podman config, CI]
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password or token from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Registry host that may be spoken to over plain HTTP (repeatable; loopback always may)
    #[arg(
        long,
        value_name = "HOST",
        env = "TAGGUARD_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registry: Vec<String>,
    /// PEM CA bundle to trust for the registries, in addition to the system's
    #[arg(long, value_name = "FILE", env = "TAGGUARD_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds allowed for each request to the registry, response body included
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        env = "TAGGUARD_TIMEOUT"
    )]
    pub timeout: u64,
    /// Seconds allowed for opening a connection to the registry
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        env = "TAGGUARD_CONNECT_TIMEOUT"
    )]
    pub connect_timeout: u64,
    /// How often a request that failed transiently (429, 5xx, reset, timeout) is tried again
    #[arg(long, value_name = "N", default_value_t = 3, env = "TAGGUARD_RETRIES")]
    pub retries: u32,
}

/// Where the policy and the build's facts come from. Flags win over CI variables and git.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Policy file [default: .tagguard.yml in the repository root, else the embedded default]
    #[arg(long, env = "TAGGUARD_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Image to tag, instead of the policy's (repeatable, or comma-separated)
    #[arg(
        long = "image",
        env = "TAGGUARD_IMAGES",
        value_delimiter = ',',
        value_name = "IMAGE"
    )]
    pub images: Vec<String>,
    /// The git checkout to read
    #[arg(long, env = "TAGGUARD_REPO", value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Commit hash [default: git HEAD, else GITHUB_SHA / CI_COMMIT_SHA]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// Branch name [default: the CI's branch, else git's]
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// The tag being built, instead of the tags at HEAD
    #[arg(long, value_name = "TAG")]
    pub git_tag: Option<String>,
    /// Pull/merge request number
    #[arg(long, value_name = "N")]
    pub pr_number: Option<String>,
    /// CI build ID [default: GITHUB_RUN_ID / CI_PIPELINE_ID / BUILD_ID]
    #[arg(long, value_name = "ID")]
    pub build_id: Option<String>,
    /// CI build number [default: GITHUB_RUN_NUMBER / CI_PIPELINE_IID / BUILD_NUMBER]
    #[arg(long, value_name = "N")]
    pub build_number: Option<String>,
    /// Build time: Unix seconds, RFC 3339 or YYYYMMDDhhmmss (UTC) [default: SOURCE_DATE_EPOCH, else now]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Allow immutable tags although tracked files have uncommitted changes
    #[arg(long, env = "TAGGUARD_ALLOW_DIRTY")]
    pub allow_dirty: bool,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    tagguard::context::parse_timestamp(text)
}
