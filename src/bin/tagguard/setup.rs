//! What the commands share: the build's tags from the flags, the registry configuration from the
//! flags and the environment, the async runtime, and the checks made before any request.

use std::collections::HashMap;
use std::io::Read as _;
use std::time::Duration;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use tagguard::context::{self, Context, Overrides};
use tagguard::policy::Policy;
use tagguard::registries::{Registries, RegistryConfig};
use tagguard::source::SourceSpec;
use tagguard::tags::{self, Computed};
use tagguard_registry::RetryPolicy;
use tagguard_registry::Secret;
use tagguard_registry::{CredentialConfig, TransportConfig};

use crate::cli::{BuildArgs, ConnectionArgs, Format, RegistryArgs};

/// The run's registries, from the flags and the environment.
pub fn registries(args: &RegistryArgs) -> Result<Registries> {
    Ok(Registries::new(registry_config(args)?))
}

/// Credentials and transport, from the flags and the environment.
pub fn registry_config(args: &RegistryArgs) -> Result<RegistryConfig> {
    let explicit = match (&args.username, args.password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .into_diagnostic()
                .wrap_err("could not read the password from stdin")?;
            let password = Secret::new(password.trim_end_matches(['\n', '\r']));
            Some((user.clone(), password))
        }
        _ => None,
    };
    let transport = transport(&args.connection, 15, 10, 3);
    Ok(RegistryConfig {
        credentials: CredentialConfig {
            explicit,
            env: std::env::vars().collect(),
        },
        transport,
        docker_push_deadline: None,
    })
}

/// Transport settings from the connection flags; what they leave unset takes the command's
/// defaults (the pre-push hook passes shorter ones): seconds of silence, seconds to connect, and
/// retries.
pub fn transport(
    connection: &ConnectionArgs,
    timeout: u64,
    connect_timeout: u64,
    retries: u32,
) -> TransportConfig {
    let seconds =
        |given: Option<u64>, default: u64| Duration::from_secs(given.unwrap_or(default).max(1));
    TransportConfig {
        insecure: connection.insecure_registry.clone(),
        ca_file: connection.ca_file.clone(),
        timeout: seconds(connection.timeout, timeout),
        connect_timeout: seconds(connection.connect_timeout, connect_timeout),
        retry: RetryPolicy {
            max_retries: connection.retries.unwrap_or(retries),
            ..RetryPolicy::default()
        },
        ..TransportConfig::default()
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("could not start the async runtime")
}

pub fn parse_source(text: &str) -> Result<SourceSpec> {
    Ok(text.parse::<SourceSpec>()?)
}

pub fn require_images(computed: &Computed, command: &str) -> Result<()> {
    if computed.images.is_empty() {
        return Err(miette!(
            code = "tagguard::check::no_images",
            help = "pass --image REGISTRY/REPOSITORY (repeatable), or set TAGGUARD_IMAGES=IMAGE,IMAGE, or list them under `images:` in the policy",
            "{command} needs the images to tag, and policy {} names none",
            computed.policy
        ));
    }
    Ok(())
}

/// A format that writes somewhere else than stdout must be able to, before anything runs.
pub fn preflight(format: Format) -> Result<()> {
    if format == Format::Github && std::env::var_os("GITHUB_OUTPUT").is_none_or(|p| p.is_empty()) {
        return Err(miette!(
            code = "tagguard::output::no_github_output",
            help =
                "use --format github inside a GitHub Actions step, or --format text/json elsewhere",
            "--format github writes to $GITHUB_OUTPUT, which is not set"
        ));
    }
    Ok(())
}

/// The build: its context, its tags, and whether the policy records pushes for `audit`.
pub struct Build {
    pub context: Context,
    pub computed: Computed,
    pub record: bool,
}

/// Gathers the context, loads the policy and computes the tags: the shared first step of every
/// command that needs tags.
pub fn compute(args: &BuildArgs) -> Result<Computed> {
    Ok(build(args)?.computed)
}

/// [`compute`], keeping the context and the policy's `audit.record`.
pub fn build(args: &BuildArgs) -> Result<Build> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = Overrides {
        sha: args.sha.clone(),
        branch: args.branch.clone(),
        git_tag: args.git_tag.clone(),
        pr_number: args.pr_number.clone(),
        build_id: args.build_id.clone(),
        build_number: args.build_number.clone(),
        timestamp: args.timestamp,
    };
    let context = context::gather(&args.repo, &env, &overrides, chrono::Utc::now())?;
    log::debug!("context: {context:?}");
    let policy = Policy::load(args.policy.as_deref(), context.root.as_deref())?;
    log::info!("policy: {}", policy.source.name);
    let computed = tags::compute(&policy, &context, &args.images)?;
    log::debug!("computed: {computed:?}");
    Ok(Build {
        context,
        computed,
        record: policy.record,
    })
}
