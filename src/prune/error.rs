//! Why a prune could not be planned. A tag kept or deleted is not an error: errors are a broken
//! invocation, the registry failing, or the registry serving something unreadable.

use tagguard_registry::ReferenceError;
use tagguard_registry::RegistryError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PruneError {
    #[error("prune needs the image repositories to read")]
    #[diagnostic(
        code(tagguard::prune::no_images),
        help("name them under `images:` in the policy, or pass --image (repeatable)")
    )]
    NoImages,

    #[error("image {image:?} is not a valid image name: {source}")]
    #[diagnostic(
        code(tagguard::prune::image),
        help("name a repository, e.g. ghcr.io/acme/app (a tag or digest on it is ignored)")
    )]
    Image {
        image: String,
        source: ReferenceError,
    },

    #[error("could not plan the prune of {image}: {source}")]
    #[diagnostic(
        code(tagguard::prune::registry),
        help(
            "planning lists the tags and reads manifests, configs and referrers (pull access); check the registry flags and credentials, then run it again: nothing was deleted"
        )
    )]
    Registry {
        image: String,
        source: Box<RegistryError>,
    },

    #[error("could not plan the prune of {image}: {what} is not what it should be: {detail}")]
    #[diagnostic(
        code(tagguard::prune::content),
        help(
            "the registry served something unreadable; look at it with `skopeo inspect --raw` and fix what is broken: nothing was deleted"
        )
    )]
    Content {
        image: String,
        what: String,
        detail: String,
    },
}

impl PruneError {
    pub(crate) fn registry(image: &str) -> impl FnOnce(RegistryError) -> PruneError + '_ {
        move |source| PruneError::Registry {
            image: image.to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn content(image: &str, what: impl Into<String>, detail: impl Into<String>) -> Self {
        PruneError::Content {
            image: image.to_owned(),
            what: what.into(),
            detail: detail.into(),
        }
    }
}
