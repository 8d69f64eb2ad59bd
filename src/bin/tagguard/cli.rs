//! Command-line arguments.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::error::ContextKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

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

/// Parses the command line and the `TAGGUARD_*` variables as CI sets them: a variable set to
/// nothing (or blanks) counts as unset; a bad value in a variable is an error naming the
/// variable, not a flag the user did not pass. Exits 2 on a usage error, as clap does.
pub fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    let command = without_empty_env(Cli::command());
    let parsed = command
        .clone()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let mut cli = match parsed {
        Ok(cli) => cli,
        Err(err) => exit_usage(&command, &args, err),
    };
    cli.flatten_lists();
    cli
}

/// The command with `env` dropped from every argument whose variable is set but blank.
fn without_empty_env(mut command: clap::Command) -> clap::Command {
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| {
            a.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.to_string_lossy().trim().is_empty())
        })
        .map(|a| a.get_id().clone())
        .collect();
    for id in blank {
        command = command.mut_arg(id, |a| a.env(None));
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, without_empty_env);
    }
    command
}

/// Prints clap's error, naming the environment variable when the bad value came from one,
/// and exits.
fn exit_usage(command: &clap::Command, args: &[OsString], err: clap::Error) -> ! {
    let shown = err
        .get(ContextKind::InvalidArg)
        .map(ToString::to_string)
        .unwrap_or_default();
    let given = |long: &str| {
        args.iter().any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{long}") || a.starts_with(&format!("--{long}="))
        })
    };
    let from_env = all_arguments(command).into_iter().find_map(|arg| {
        let long = arg.get_long()?;
        let var = arg.get_env()?.to_string_lossy().into_owned();
        let named = shown == format!("--{long}") || shown.starts_with(&format!("--{long} "));
        (named && !given(long) && std::env::var_os(&var).is_some()).then_some(var)
    });
    match from_env {
        Some(var) => {
            let text = err.render().to_string().replace(
                &format!("'{shown}'"),
                &format!("environment variable {var}"),
            );
            let _ = write!(std::io::stderr().lock(), "{text}");
            std::process::exit(2)
        }
        None => err.exit(),
    }
}

fn all_arguments(command: &clap::Command) -> Vec<&clap::Arg> {
    let mut out: Vec<&clap::Arg> = command.get_arguments().collect();
    for sub in command.get_subcommands() {
        out.extend(all_arguments(sub));
    }
    out
}

impl Cli {
    /// Splits list values given as one text (`a, b` or one per line) into their items.
    fn flatten_lists(&mut self) {
        let (images, hosts) = match &mut self.command {
            Command::Tags(a) => (Some(&mut a.build.images), None),
            Command::Check(a) => (
                Some(&mut a.build.images),
                Some(&mut a.registry.connection.insecure_registry),
            ),
            Command::Push(a) => (
                Some(&mut a.build.images),
                Some(&mut a.registry.connection.insecure_registry),
            ),
            Command::Hook(HookCommand::PrePush(a)) => (
                Some(&mut a.images),
                Some(&mut a.connection.insecure_registry),
            ),
            Command::Prune(a) => (
                Some(&mut a.images),
                Some(&mut a.registry.connection.insecure_registry),
            ),
            _ => (None, None),
        };
        images.into_iter().chain(hosts).for_each(flatten_list);
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute the tags of this build (no network)
    Tags(Box<TagsArgs>),
    /// Look up every computed tag in the registry: create, unchanged, move, skip, keep or refuse
    Check(Box<CheckArgs>),
    /// Check, then retag and push only what the policy allows, and read every tag back
    Push(Box<PushArgs>),
    /// Check a policy file, print its JSON Schema, or print the default policy or a preset
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Git hooks that guard release tags before they are pushed
    #[command(subcommand)]
    Hook(HookCommand),
    /// Print a shell completion script
    ///
    /// For example: `tagguard completions bash > /etc/bash_completion.d/tagguard`,
    /// `tagguard completions zsh > "${fpath[1]}/_tagguard"`,
    /// `tagguard completions fish > ~/.config/fish/completions/tagguard.fish`.
    Completions {
        /// The shell to complete in
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    ///
    /// For example: `tagguard man > /usr/local/share/man/man1/tagguard.1`.
    Man,
    /// Report the tags in the registry that break the policy's promises
    Audit(Box<AuditArgs>),
    /// Retire temporary tags whose `retain` is over (plan; --apply deletes), never what stays needs
    Prune(Box<PruneArgs>),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Every tag is decided: delete (a temporary tag whose `retain` is over), keep (its `retain`\nstill keeps it) or protect (immutable, floating, matching no rule, no `retain`, a signature or\nrecord tag: never touched). Without --apply nothing changes. See docs/prune.md.\nExit codes: 0 done, 1 error (the JSON names what was deleted and what was not), 2 usage,\n3 the plan would touch something protected (a planner bug: nothing is deleted)."
)]
pub struct PruneArgs {
    /// Delete what the plan says; without it, only print the plan
    #[arg(long, env = "TAGGUARD_APPLY", value_parser = boolish)]
    pub apply: bool,
    /// Policy file [default: .tagguard.yml in --repo, else the embedded default]
    #[arg(long, env = "TAGGUARD_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Image repository to prune, instead of the policy's (repeatable, or comma-separated)
    #[arg(
        long = "image",
        env = "TAGGUARD_IMAGES",
        value_delimiter = ',',
        value_name = "IMAGE",
        value_parser = image_list
    )]
    pub images: Vec<String>,
    /// The checkout: its .tagguard.yml, and its remote for which branches exist
    #[arg(long, env = "TAGGUARD_REPO", value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// The git remote whose branches count as existing
    #[arg(
        long,
        env = "TAGGUARD_REMOTE",
        value_name = "NAME",
        default_value = "origin"
    )]
    pub remote: String,
    /// The time ages are measured at: Unix seconds, RFC 3339 or YYYYMMDDhhmmss (UTC) [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<DateTime<Utc>>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, env = "TAGGUARD_FORMAT")]
    pub format: Format,
    /// Requests in flight at once per repository
    #[arg(long, value_name = "N", default_value_t = tagguard::audit::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Findings (codes tagguard::audit::…): floating_behind, version_label, revision_label, moved\n(see docs/audit.md). Exit codes: 0 no finding, 1 error, 2 usage, 3 findings."
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
    #[arg(long, value_name = "N", default_value_t = tagguard::audit::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=512))]
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
    /// Image to look the release up in, instead of the policy's (repeatable; comma- or
    /// newline-separated)
    #[arg(long = "image", env = "TAGGUARD_IMAGES", value_delimiter = ',', value_name = "IMAGE", value_parser = image_list)]
    pub images: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
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
    /// Print the embedded default policy (used when there is no .tagguard.yml), or a preset
    Default {
        /// Which policy: tagguard's default, or one that gives docker/metadata-action's
        /// default tags (schedule, branch, tag, pull request)
        #[arg(long, value_enum, default_value_t = Preset::Tagguard)]
        preset: Preset,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The embedded default policy
    Tagguard,
    /// docker/metadata-action's default tags
    MetadataAction,
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
    /// dotenv lines (KEY=VALUE) for the next step or job of any CI (docs/ci)
    Env,
    /// Azure Pipelines output variables (`##vso[task.setvariable …;isOutput=true]`)
    Azure,
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
    #[arg(long, env = "TAGGUARD_DRY_RUN", value_parser = boolish)]
    pub dry_run: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text, env = "TAGGUARD_FORMAT")]
    pub format: Format,
    /// The most one upload request (PATCH) carries, in MiB, when a blob is copied from another
    /// registry; blobs are streamed, so memory does not grow with it
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub chunk_size: u64,
    /// Seconds a new immutable tag must stay unchallenged before the push claims it, so two
    /// racing pushes never both succeed (0: off; see docs/push-protocol.md)
    #[arg(long, value_name = "SECONDS", default_value = "2", env = "TAGGUARD_SETTLE", hide_env_values = true, value_parser = parse_seconds)]
    pub settle: std::time::Duration,
    /// Seconds a whole `docker push` (a docker: source) may take before it is stopped, however
    /// much it prints; it is also stopped after 4 × (retries + 1) × --timeout (at least 120 s)
    /// without progress
    #[arg(long, value_name = "SECONDS", default_value_t = 1800, env = "TAGGUARD_DOCKER_PUSH_DEADLINE", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub docker_push_deadline: u64,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=600.0).contains(s))
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds from 0 to 600"))
}

/// How to reach registries: credentials, then the connection.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Registry username (with --password-stdin) [default: TAGGUARD_USERNAME, docker/podman config, CI]
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password or token from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// How to talk to registries: shared by `check`, `push` and the pre-push hook.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Registry host that may be spoken to over plain HTTP (repeatable; comma- or
    /// newline-separated; loopback always may)
    #[arg(
        long,
        value_name = "HOST",
        env = "TAGGUARD_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_parser = host_list
    )]
    pub insecure_registry: Vec<String>,
    /// PEM CA bundle to trust for the registries, in addition to the system's
    #[arg(long, value_name = "FILE", env = "TAGGUARD_CA_FILE", value_parser = readable_file)]
    pub ca_file: Option<PathBuf>,
    /// Seconds a registry request may go without a byte moving (a large blob takes as long as
    /// it needs while bytes flow) [default: 15; the pre-push hook: 10]
    #[arg(long, value_name = "SECONDS", env = "TAGGUARD_TIMEOUT")]
    pub timeout: Option<u64>,
    /// Seconds allowed for opening a connection to the registry [default: 10; the pre-push
    /// hook: 5]
    #[arg(long, value_name = "SECONDS", env = "TAGGUARD_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<u64>,
    /// How often a request that failed transiently (429, 5xx, reset, timeout) is tried again
    /// [default: 3; the pre-push hook: 1]
    #[arg(long, value_name = "N", env = "TAGGUARD_RETRIES")]
    pub retries: Option<u32>,
}

/// Where the policy and the build's facts come from. Flags win over CI variables and git.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Policy file [default: .tagguard.yml in the repository root, else the embedded default]
    #[arg(long, env = "TAGGUARD_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Image to tag, e.g. ghcr.io/acme/app (repeatable; comma- or newline-separated)
    /// [default: the policy's `images:`; the embedded default policy names none, so check and
    /// push need this or TAGGUARD_IMAGES]
    #[arg(long = "image", env = "TAGGUARD_IMAGES", value_delimiter = ',', value_name = "IMAGE", value_parser = image_list)]
    pub images: Vec<String>,
    /// The git checkout to read
    #[arg(long, env = "TAGGUARD_REPO", value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Commit hash [default: git HEAD, else GITHUB_SHA / CI_COMMIT_SHA]
    #[arg(long, value_name = "SHA", value_parser = commit_hash)]
    pub sha: Option<String>,
    /// Branch name [default: the CI's branch, else git's]
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub branch: Option<String>,
    /// The tag being built, instead of the tags at HEAD
    #[arg(long, value_name = "TAG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub git_tag: Option<String>,
    /// Pull/merge request number
    #[arg(long, value_name = "N", value_parser = number)]
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
    #[arg(long, env = "TAGGUARD_ALLOW_DIRTY", value_parser = boolish)]
    pub allow_dirty: bool,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    tagguard::context::parse_timestamp(text)
}

/// One or more image names (newline-separated; clap splits on commas), each valid.
fn image_list(text: &str) -> Result<String, String> {
    for image in list_items(text) {
        if let Some(why) = tagguard::policy::image_name_problem(image) {
            return Err(format!("{image:?} is not an image name: {why}"));
        }
    }
    Ok(text.to_owned())
}

/// One or more registry hosts (newline-separated; clap splits on commas).
fn host_list(text: &str) -> Result<String, String> {
    for host in list_items(text) {
        if host.contains(['/', '@']) || host.chars().any(char::is_whitespace) {
            return Err(format!(
                "{host:?} is not a registry host: give host or host:port, e.g. registry:5000"
            ));
        }
    }
    Ok(text.to_owned())
}

/// The items of a list value: split on newlines, trimmed, empty ones dropped.
pub fn list_items(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Lists as CI sets them (`a, b`, one per line): the items, trimmed, without empty ones.
pub fn flatten_list(values: &mut Vec<String>) {
    *values = values
        .iter()
        .flat_map(|v| list_items(v))
        .map(str::to_owned)
        .collect();
}

/// A yes/no value as CI systems write them.
fn boolish(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "0" | "false" | "no" | "off" | "n" => Ok(false),
        _ => Err("expected 1/0, true/false, yes/no or on/off".to_owned()),
    }
}

fn commit_hash(text: &str) -> Result<String, String> {
    let text = text.trim();
    if (7..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err("expected 7 to 64 hexadecimal digits".to_owned())
    }
}

fn number(text: &str) -> Result<String, String> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(n) => Ok(n.to_string()),
        Err(_) => Err("expected a number, e.g. 12".to_owned()),
    }
}

fn readable_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err("not a file".to_owned()),
        Err(e) => Err(format!("cannot read it: {e}")),
    }
}
