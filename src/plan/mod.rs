//! The plan stage: observe where every computed tag points, then decide what pushing would do.
//! Observing is the network part ([`observe`]); deciding is a pure function of the computed
//! tags, the source image and the observed state ([`decide`]).

mod again;
pub mod decide;
mod decision;
mod dirty;
mod observe;
mod targets;
mod ways_out;

pub use again::Held;
pub use decide::{decide, hold_for};
pub use decision::{Action, Decision, RefusalReason, Seen, SkipReason, decide_one, same_digest};
pub use dirty::{dirty_tree, precheck};
pub use observe::{Observed, observe};
pub use targets::{Target, targets};

use std::time::Instant;

use crate::registries::Registries;
use crate::source::{SourceError, SourceImage};
use crate::tags::Computed;
use tagguard_registry::{Manifest, RegistryError};
use tagguard_registry::{ReferenceError, TagError};

/// What the plan stage hands on: every decision, and what the apply stage needs to act on them.
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub targets: Vec<Target>,
    pub source: Option<SourceImage>,
    /// Earlier builds of this commit that kept tags hold, which the image's other tags follow
    /// (`on-conflict: keep-same-revision`): their manifests, as the registry served them.
    pub adopted: Vec<Manifest>,
    /// When the plan's lookups were sent (all at once), when every tag was looked up (not only
    /// listed): the last lookup of every tag, for a push with no content to copy before its
    /// first writes.
    pub looked: Option<Instant>,
}

/// An operational failure of planning (a refusal is a [`Decision`], not an error).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    #[error("image {image:?} of the policy is not a valid image name: {source}")]
    #[diagnostic(
        code(tagguard::check::invalid_image),
        help("an image is host/repository in lowercase, e.g. ghcr.io/acme/app")
    )]
    Image {
        image: String,
        source: ReferenceError,
    },
    #[error(
        "image {image:?} of the policy carries a tag or digest; tags come from the policy's rules"
    )]
    #[diagnostic(
        code(tagguard::check::image_with_tag),
        help("name the image without :tag or @digest")
    )]
    ImageWithTag { image: String },
    #[error("tag {tag:?} for image {image}: {source}")]
    #[diagnostic(code(tagguard::check::invalid_tag))]
    Tag {
        image: String,
        tag: String,
        source: TagError,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<RegistryError>),
    #[error("could not read which commit {reference} was built from: {detail}")]
    #[diagnostic(
        code(tagguard::check::revision),
        help(
            "the rule says on-conflict: keep-same-revision, which reads the image's config from the registry; run again, or fix what the message names"
        )
    )]
    Revision { reference: String, detail: String },
}

impl From<RegistryError> for PlanError {
    fn from(e: RegistryError) -> Self {
        PlanError::Registry(Box::new(e))
    }
}

/// Observes every image × tag of `computed` while `source` resolves (both at once), then
/// decides. `source` is [`crate::source::identify`] for a check, [`crate::source::load`] for a
/// push: the plan does not care how much of the source was read.
pub async fn plan<F>(
    computed: &Computed,
    source: Option<F>,
    registries: &Registries,
) -> Result<Plan, PlanError>
where
    F: Future<Output = Result<SourceImage, SourceError>>,
{
    let targets = targets(computed)?;
    let resolve = async {
        match source {
            Some(f) => f.await.map(Some),
            None => Ok(None),
        }
    };
    let looked = Instant::now();
    let (source, observed) =
        futures_util::future::join(resolve, observe(computed, &targets, registries)).await;
    let (source, mut observed) = (source?, observed?);
    observed
        .compare_configs(source.as_ref(), &targets, registries)
        .await?;
    observed
        .read_revisions(computed, source.as_ref(), &targets, registries)
        .await?;
    let decisions = decide(computed, source.as_ref(), &observed);
    let adopted = decide::adopted(&decisions);
    let adopted = observed
        .revisions
        .iter()
        .flatten()
        .flatten()
        .filter(|b| adopted.contains(&b.manifest.digest))
        .map(|b| b.manifest.clone())
        .collect();
    Ok(Plan {
        decisions,
        targets,
        source,
        adopted,
        looked: (!observed.listed).then_some(looked),
    })
}
