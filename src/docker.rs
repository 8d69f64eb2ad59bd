//! The Docker engine, through the `docker` CLI: the only place tagguard runs it. The engine's
//! own login (`docker login`) is what `docker push` uses.

use std::process::Command;

use crate::registry::Digest;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("could not run `docker {args}`: {source} (is the Docker CLI installed and on PATH?)")]
    Spawn {
        args: String,
        source: std::io::Error,
    },
    #[error("`docker {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("`docker {args}` gave no usable digest: {output}")]
    NoDigest { args: String, output: String },
}

fn run(args: &[&str]) -> Result<String, DockerError> {
    let shown = args.join(" ");
    log::debug!("running docker {shown}");
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|source| DockerError::Spawn {
            args: shown.clone(),
            source,
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
pub fn image_id(image: &str) -> Result<Digest, DockerError> {
    let args = ["image", "inspect", "--format", "{{.Id}}", image];
    let out = run(&args)?;
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

pub fn identity() -> Result<IdKind, DockerError> {
    let out = run(&["info", "--format", "{{json .DriverStatus}}"])?;
    Ok(if out.contains("io.containerd.snapshotter") {
        IdKind::Manifest
    } else {
        IdKind::Config
    })
}

pub fn tag(image: &str, target: &str) -> Result<(), DockerError> {
    run(&["tag", image, target]).map(drop)
}

/// Pushes `target` and returns the manifest digest the engine reports.
pub fn push(target: &str) -> Result<Digest, DockerError> {
    let args = ["push", target];
    let out = run(&args)?;
    // The last line says `TAG: digest: sha256:… size: N` (`--quiet` leaves the digest out on
    // some engines, so it is not used).
    out.split(|c: char| c.is_whitespace() || c == '@')
        .find_map(|word| word.parse::<Digest>().ok())
        .ok_or_else(|| DockerError::NoDigest {
            args: args.join(" "),
            output: out.trim().to_owned(),
        })
}
