//! Why an audit could not be finished. A finding is not an error: errors are the registry
//! failing, or answering with something that is not what it should be.

use tagguard_registry::ReferenceError;
use tagguard_registry::RegistryError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AuditError {
    #[error("audit needs the image repositories to read")]
    #[diagnostic(
        code(tagguard::audit::no_images),
        help("name them under `images:` in the policy, or pass --image (repeatable)")
    )]
    NoImages,

    #[error("image {image:?} is not a valid image name: {source}")]
    #[diagnostic(
        code(tagguard::audit::image),
        help("name a repository, e.g. ghcr.io/acme/app (a tag or digest on it is ignored)")
    )]
    Image {
        image: String,
        source: ReferenceError,
    },

    #[error("could not audit {image}: {source}")]
    #[diagnostic(
        code(tagguard::audit::registry),
        help(
            "the audit needs to list the tags and read manifests, configs and referrers (pull access); check the registry flags and credentials, then run it again"
        )
    )]
    Registry {
        image: String,
        source: Box<RegistryError>,
    },

    #[error("could not audit {image}: {what} is not what it should be: {detail}")]
    #[diagnostic(
        code(tagguard::audit::content),
        help(
            "the registry served something unreadable; look at it with `skopeo inspect --raw` and remove or fix what is broken"
        )
    )]
    Content {
        image: String,
        what: String,
        detail: String,
    },
}

impl AuditError {
    pub(crate) fn registry(image: &str) -> impl FnOnce(RegistryError) -> AuditError + '_ {
        move |source| AuditError::Registry {
            image: image.to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn content(image: &str, what: impl Into<String>, detail: impl Into<String>) -> Self {
        AuditError::Content {
            image: image.to_owned(),
            what: what.into(),
            detail: detail.into(),
        }
    }
}
