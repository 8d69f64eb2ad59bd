//! The Docker engine, through the `docker` CLI: the only place tagguard runs it. The engine's
//! own login (`docker login`) is what `docker push` uses. Every command runs under a deadline of
//! silence ([`DockerLimits`]) and is killed after it; `docker push` also under a deadline for the
//! whole push, and its retry countdown ("Retrying in 5 seconds") is not progress.

use std::process::Command;
use std::time::Duration;

use tagguard_registry::{Digest, TransportConfig};
use tagguard_registry::{RunError, Watch, run_watched};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DockerError {
    #[error("could not run `docker {args}`: {source} (is the Docker CLI installed and on PATH?)")]
    #[diagnostic(
        code(tagguard::docker::spawn),
        help("install the Docker CLI, or use a registry or OCI layout source instead of docker:")
    )]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`docker {args}` failed: {stderr}")]
    #[diagnostic(
        code(tagguard::docker::failed),
        help("run the same docker command yourself to see what the engine says")
    )]
    Failed { args: String, stderr: String },
    #[error("`docker {args}` gave no usable digest: {output}")]
    #[diagnostic(
        code(tagguard::docker::no_digest),
        help("update the Docker CLI, or push from a registry or OCI layout source")
    )]
    NoDigest { args: String, output: String },
    #[error("`docker {args}` printed nothing for {}s and was stopped", .after.as_secs())]
    #[diagnostic(
        code(tagguard::docker::silent),
        help(
            "the Docker engine (or the registry behind it) stopped answering; check `docker info`, \
             or raise --timeout (a push may be silent for 4 × (retries + 1) × timeout, at least 120 s)"
        )
    )]
    Silent { args: String, after: Duration },
    #[error("`docker {args}` was stopped: this run's docker pushes together reached their deadline of {}s (--docker-push-deadline)", .after.as_secs())]
    #[diagnostic(
        code(tagguard::docker::overdue),
        help(
            "the Docker engine kept retrying (or the upload is slower than the deadline allows); \
             check that the engine reaches the registry (`docker push` by hand shows its \
             retries), or raise --docker-push-deadline (TAGGUARD_DOCKER_PUSH_DEADLINE)"
        )
    )]
    Overdue { args: String, after: Duration },
}

/// How long a `docker` command may print nothing before it is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerLimits {
    /// `inspect`, `info`, `tag`: answered by the local engine.
    pub quick: Duration,
    /// `push`: prints a line when a layer changes state, so a large layer on a slow link is
    /// silent for as long as its upload takes.
    pub push: Duration,
    /// The longest a whole `docker push` may take (`--docker-push-deadline`).
    pub push_total: Duration,
}

/// The default of `--docker-push-deadline`: 30 minutes.
pub const PUSH_DEADLINE: Duration = Duration::from_secs(30 * 60);

impl Default for DockerLimits {
    fn default() -> Self {
        DockerLimits::from_transport(&TransportConfig::default())
    }
}

impl DockerLimits {
    /// From `--timeout` and `--retries`: `quick` is 2 × timeout (at least 30 s), `push` is
    /// 4 × (retries + 1) × timeout (at least 120 s).
    pub fn from_transport(transport: &TransportConfig) -> DockerLimits {
        let timeout = transport.timeout;
        let attempts = transport.retry.max_retries.saturating_add(1);
        DockerLimits {
            quick: (timeout * 2).max(Duration::from_secs(30)),
            push: (timeout * 4)
                .saturating_mul(attempts)
                .max(Duration::from_secs(120)),
            push_total: PUSH_DEADLINE,
        }
    }
}

fn run(args: &[&str], watch: Watch) -> Result<String, DockerError> {
    let shown = args.join(" ");
    log::debug!("running docker {shown}");
    let out = run_watched(Command::new("docker").args(args), b"", watch).map_err(|e| match e {
        RunError::Spawn(source) => DockerError::Spawn {
            args: shown.clone(),
            source,
        },
        RunError::Silent(after) => DockerError::Silent {
            args: shown.clone(),
            after,
        },
        RunError::Overdue(after) => DockerError::Overdue {
            args: shown.clone(),
            after,
        },
    })?;
    if !out.status.success() {
        return Err(DockerError::Failed {
            args: shown,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The image ID: with the classic image store, the digest of the image's config blob — which is
/// what a registry manifest's `config.digest` names, so a local image and a pushed one can be
/// compared before pushing. (With the containerd image store the ID is the manifest or index
/// digest instead; [`identity`] says which.)
pub fn image_id(image: &str, limits: &DockerLimits) -> Result<Digest, DockerError> {
    let args = ["image", "inspect", "--format", "{{.Id}}", image];
    let out = run(&args, Watch::silence(limits.quick))?;
    out.trim().parse().map_err(|_| DockerError::NoDigest {
        args: args.join(" "),
        output: out.trim().to_owned(),
    })
}

/// What the image ID identifies on this engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Classic store: the config digest.
    Config,
    /// containerd image store: the manifest (or index) digest.
    Manifest,
}

pub fn identity(limits: &DockerLimits) -> Result<IdKind, DockerError> {
    let out = run(
        &["info", "--format", "{{json .DriverStatus}}"],
        Watch::silence(limits.quick),
    )?;
    Ok(if out.contains("io.containerd.snapshotter") {
        IdKind::Manifest
    } else {
        IdKind::Config
    })
}

pub fn tag(image: &str, target: &str, limits: &DockerLimits) -> Result<(), DockerError> {
    run(&["tag", image, target], Watch::silence(limits.quick)).map(drop)
}

/// Pushes `target` and returns the manifest digest the engine reports. `left`: what is left of
/// the run's `limits.push_total` for its docker pushes.
pub fn push(target: &str, limits: &DockerLimits, left: Duration) -> Result<Digest, DockerError> {
    let args = ["push", target];
    let watch = Watch {
        idle: limits.push,
        total: Some(left.max(Duration::from_millis(1))),
        progress: is_progress,
    };
    let out = run(&args, watch).map_err(|e| match e {
        DockerError::Overdue { args, .. } => DockerError::Overdue {
            args,
            after: limits.push_total,
        },
        other => other,
    })?;
    // The last line says `TAG: digest: sha256:… size: N` (`--quiet` leaves the digest out on
    // some engines, so it is not used).
    out.split(|c: char| c.is_whitespace() || c == '@')
        .find_map(|word| word.parse::<Digest>().ok())
        .ok_or_else(|| DockerError::NoDigest {
            args: args.join(" "),
            output: out.trim().to_owned(),
        })
}

/// Whether output of `docker push` is progress: any line but the engine's retry countdown
/// (`<layer>: Retrying in 5 seconds`), which it prints every second while it gets nowhere.
fn is_progress(output: &[u8]) -> bool {
    String::from_utf8_lossy(output)
        .split(['\n', '\r'])
        .map(str::trim)
        .any(|line| !line.is_empty() && !line.contains("Retrying in "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_countdown_is_no_progress() {
        assert!(!is_progress(b"5f70bf18a086: Retrying in 5 seconds\n"));
        assert!(!is_progress(
            b"5f70bf18a086: Retrying in 2 seconds\r5f70bf18a086: Retrying in 1 second\r\n"
        ));
        assert!(is_progress(b"5f70bf18a086: Pushed\n"));
        assert!(is_progress(
            b"5f70bf18a086: Retrying in 1 second\n5f70bf18a086: Pushing\n"
        ));
        assert!(!is_progress(b"\n"));
    }

    #[test]
    fn limits_follow_timeout_and_retries() {
        let d = DockerLimits::default();
        assert_eq!(d.quick, Duration::from_secs(30));
        assert_eq!(d.push, Duration::from_secs(240));
        assert_eq!(d.push_total, Duration::from_secs(1800));
        let mut t = TransportConfig {
            timeout: Duration::from_secs(3),
            ..TransportConfig::default()
        };
        t.retry.max_retries = 0;
        let l = DockerLimits::from_transport(&t);
        assert_eq!(
            (l.quick, l.push),
            (Duration::from_secs(30), Duration::from_secs(120))
        );
    }
}
