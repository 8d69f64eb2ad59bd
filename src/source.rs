//! Where the image to be pushed comes from.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::registry::Reference;
use crate::registry::reference::ReferenceError;

/// The image a push copies: a registry reference, a Docker engine image, or an OCI image layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
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

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {text:?}: {source}")]
    Reference {
        text: String,
        source: ReferenceError,
    },
    #[error("source {0:?}: `docker:` needs an image name, e.g. docker:api-node")]
    EmptyDocker(String),
    #[error("source {0:?}: `oci:` needs a directory, e.g. oci:build/image or oci:build/image:v1")]
    EmptyLayout(String),
}

impl FromStr for Source {
    type Err = SourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(image) = text.strip_prefix("docker:") {
            let image = image.trim_start_matches("//");
            if image.is_empty() {
                return Err(SourceError::EmptyDocker(text.to_owned()));
            }
            return Ok(Source::Docker(image.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            // Like skopeo: the part after the last `:` is a reference unless it looks like a path.
            let (dir, reference) = match rest.rsplit_once(':') {
                Some((dir, r)) if !r.contains('/') && !dir.is_empty() => (dir, Some(r.to_owned())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(SourceError::EmptyLayout(text.to_owned()));
            }
            return Ok(Source::Layout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        let text = text.strip_prefix("docker://").unwrap_or(text);
        text.parse()
            .map(Source::Registry)
            .map_err(|source| SourceError::Reference {
                text: text.to_owned(),
                source,
            })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Registry(r) => write!(f, "{r}"),
            Source::Docker(image) => write!(f, "docker:{image}"),
            Source::Layout {
                dir,
                reference: None,
            } => write!(f, "oci:{}", dir.display()),
            Source::Layout {
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
            "docker:api-node".parse::<Source>().unwrap(),
            Source::Docker("api-node".into())
        );
        assert_eq!(
            "oci:build/img:v1".parse::<Source>().unwrap(),
            Source::Layout {
                dir: "build/img".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            "oci:/tmp/x".parse::<Source>().unwrap(),
            Source::Layout {
                dir: "/tmp/x".into(),
                reference: None
            }
        );
        assert!(matches!("127.0.0.1:5000/app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".parse::<Source>().unwrap(), Source::Registry(_)));
        assert!("docker:".parse::<Source>().is_err());
        assert!("oci:".parse::<Source>().is_err());
    }
}
