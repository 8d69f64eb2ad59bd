//! `--source` as the user wrote it: which kind of image, and where.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tagguard_registry::Reference;
use tagguard_registry::ReferenceError;

/// The image a push copies: a registry reference, a Docker engine image, or an OCI image layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `host/repo:tag` or `host/repo@sha256:…` — retagged daemonlessly.
    Registry(Reference),
    /// `docker:IMAGE` — an image in the local Docker engine, pushed with `docker push`.
    Docker(String),
    /// `oci:DIR[:REF]` — an OCI image layout directory (buildx `type=oci`, kaniko, buildah,
    /// skopeo), REF selecting a manifest by its `org.opencontainers.image.ref.name`.
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SpecError {
    #[error("source {text:?}: {source}")]
    #[diagnostic(
        code(tagguard::source::invalid),
        help("a registry source is host/repository:tag or host/repository@sha256:…")
    )]
    Reference {
        text: String,
        source: ReferenceError,
    },
    #[diagnostic(code(tagguard::source::invalid))]
    #[error("source {0:?}: `docker:` needs an image name, e.g. docker:api-node")]
    EmptyDocker(String),
    #[diagnostic(code(tagguard::source::invalid))]
    #[error("source {0:?}: `oci:` needs a directory, e.g. oci:build/image or oci:build/image:v1")]
    EmptyLayout(String),
}

impl FromStr for SourceSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(image) = text.strip_prefix("docker:") {
            let image = image.trim_start_matches("//");
            if image.is_empty() {
                return Err(SpecError::EmptyDocker(text.to_owned()));
            }
            return Ok(SourceSpec::Docker(image.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            // Like skopeo: the part after the last `:` is a reference unless it looks like a path.
            let (dir, reference) = match rest.rsplit_once(':') {
                Some((dir, r)) if !r.contains('/') && !dir.is_empty() => (dir, Some(r.to_owned())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(SpecError::EmptyLayout(text.to_owned()));
            }
            return Ok(SourceSpec::Layout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        let text = text.strip_prefix("docker://").unwrap_or(text);
        text.parse()
            .map(SourceSpec::Registry)
            .map_err(|source| SpecError::Reference {
                text: text.to_owned(),
                source,
            })
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Registry(r) => write!(f, "{r}"),
            SourceSpec::Docker(image) => write!(f, "docker:{image}"),
            SourceSpec::Layout {
                dir,
                reference: None,
            } => write!(f, "oci:{}", dir.display()),
            SourceSpec::Layout {
                dir,
                reference: Some(r),
            } => write!(f, "oci:{}:{r}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            "docker:api-node".parse::<SourceSpec>().unwrap(),
            SourceSpec::Docker("api-node".into())
        );
        assert_eq!(
            "oci:build/img:v1".parse::<SourceSpec>().unwrap(),
            SourceSpec::Layout {
                dir: "build/img".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            "oci:/tmp/x".parse::<SourceSpec>().unwrap(),
            SourceSpec::Layout {
                dir: "/tmp/x".into(),
                reference: None
            }
        );
        assert!(matches!("127.0.0.1:5000/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse::<SourceSpec>().unwrap(), SourceSpec::Registry(_)));
        assert!("docker:".parse::<SourceSpec>().is_err());
        assert!("oci:".parse::<SourceSpec>().is_err());
    }
}
