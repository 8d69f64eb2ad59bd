//! One tag write and what it takes to know its outcome: the lookup right before it, the write
//! itself, and — when the registry's answer is lost (a 5xx, a reset, a timeout) — a lookup that
//! tells whether it landed, so the user is never handed the question.

use std::time::{Duration, Instant};

use crate::docker::{self, DockerError};
use crate::registries::Registries;
use tagguard_registry::RetryPolicy;
use tagguard_registry::{Digest, Manifest, Reference, RegistryError, WriteFate};

use super::Progress;

/// What the tags are written with.
pub enum Content<'a> {
    /// A manifest's exact bytes, the same under every tag (so the same digest).
    Manifest { bytes: Vec<u8>, media_type: String },
    /// A Docker engine image, tagged and pushed by the engine.
    Docker { image: &'a str },
}

pub struct Writer<'a> {
    pub registries: &'a Registries,
    pub content: Content<'a>,
    /// Earlier builds of this commit that the decisions adopted (`on-conflict:
    /// keep-same-revision`): a tag decided for one of them is written with its manifest.
    pub adopted: &'a [Manifest],
    /// When a write whose answer was lost, and that a lookup found not applied, goes again.
    pub retry: &'a RetryPolicy,
    pub settle: Duration,
    /// The release being pushed: what a moved floating tag is compared with.
    pub version: Option<&'a semver::Version>,
    /// When this run's first `docker push` started: `--docker-push-deadline` bounds them all
    /// together, not each tag's.
    pub docker_started: std::sync::OnceLock<Instant>,
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

/// A lookup of a tag: what it held, and when the question was sent.
#[derive(Debug, Clone)]
pub struct Look {
    pub found: Option<Digest>,
    pub sent: Instant,
}

/// How one tag write ended.
pub enum Outcome {
    /// The registry holds the tag at `digest`; `since` is when the lookup that found the tag
    /// as decided was sent (unknown for a Docker engine push, whose manifest write comes after
    /// its own layer uploads), `ack` when the write was known to have landed.
    Landed {
        digest: Digest,
        since: Option<Instant>,
        ack: Instant,
    },
    /// The registry's own immutability refusal.
    Refused(Box<RegistryError>),
    /// The write provably did not land (or failed every time it was repeated).
    Failed(WriteError),
    /// The answer was lost, and a lookup found the tag at another digest.
    Raced { found: Option<Digest> },
    /// The answer was lost, and the lookup to settle it failed too.
    Unsure {
        write: Box<RegistryError>,
        lookup: Box<RegistryError>,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WriteError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Docker(#[from] DockerError),
}

impl Writer<'_> {
    /// Whether a write of `d` must settle (docs/push-protocol.md): an immutable tag, and a
    /// floating tag of a release (which converges on the highest release only so). A floating
    /// tag outside a release has no version to order by, and moves on every push.
    pub fn settles(&self, d: &crate::plan::Decision) -> bool {
        d.immutable || (d.floating.is_some() && self.version.is_some())
    }

    /// Looks `reference` up (HEAD).
    pub async fn look(&self, reference: &Reference) -> Result<Look, RegistryError> {
        let sent = Instant::now();
        let found = self
            .registries
            .client(&reference.registry)?
            .resolve(reference)
            .await?;
        Ok(Look { found, sent })
    }

    /// Writes the tag, which `before` found as decided. After a lost answer, the tag is looked
    /// up: this push's digest means it landed, what it held before means it did not (the write
    /// is sent again, as the retry policy allows), anything else is another writer's.
    /// `name` is the `image:tag` as the policy wrote it (what the Docker engine is told);
    /// `desired` the digest the decision wants the tag at.
    pub async fn write(
        &self,
        reference: &Reference,
        name: &str,
        desired: Option<&Digest>,
        before: Look,
    ) -> Outcome {
        let adopted = self.adopted.iter().find(|m| Some(&m.digest) == desired);
        let (bytes, media_type) = match (adopted, &self.content) {
            (Some(m), _) => (&m.bytes, &m.media_type),
            (None, Content::Manifest { bytes, media_type }) => (bytes, media_type),
            (None, Content::Docker { image }) => {
                let limits = self.registries.docker_limits();
                let started = *self.docker_started.get_or_init(Instant::now);
                let left = limits.push_total.saturating_sub(started.elapsed());
                return docker_push(image, name, &limits, left);
            }
        };
        let client = match self.registries.client(&reference.registry) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(WriteError::Registry(Box::new(e))),
        };
        let tag = reference.tag.as_deref().unwrap_or_default();
        let ours = Digest::sha256_of(bytes);
        let mut since = before.sent;
        let mut repeats = 0;
        loop {
            let put = client
                .put_manifest(&reference.repository, tag, media_type, bytes)
                .await;
            let error = match put {
                Ok(digest) => {
                    return Outcome::Landed {
                        digest,
                        since: Some(since),
                        ack: Instant::now(),
                    };
                }
                Err(e) => e,
            };
            match error.write_fate() {
                WriteFate::Refused => return Outcome::Refused(Box::new(error)),
                WriteFate::NotApplied => {
                    return Outcome::Failed(WriteError::Registry(Box::new(error)));
                }
                WriteFate::Unknown => {}
            }
            log::info!("{reference}: the write's answer was lost ({error}); looking the tag up");
            let look = match self.look(reference).await {
                Ok(look) => look,
                Err(lookup) => {
                    return Outcome::Unsure {
                        write: Box::new(error),
                        lookup: Box::new(lookup),
                    };
                }
            };
            match look.found {
                Some(d) if d == ours => {
                    return Outcome::Landed {
                        digest: d,
                        since: Some(since),
                        ack: Instant::now(),
                    };
                }
                found if found == before.found && self.retry.rewrite_tag(repeats) => {
                    repeats += 1;
                    since = look.sent;
                }
                found if found == before.found => {
                    return Outcome::Failed(WriteError::Registry(Box::new(error)));
                }
                found => return Outcome::Raced { found },
            }
        }
    }
}

fn docker_push(
    image: &str,
    target: &str,
    limits: &docker::DockerLimits,
    left: Duration,
) -> Outcome {
    let pushed =
        docker::tag(image, target, limits).and_then(|()| docker::push(target, limits, left));
    match pushed {
        Ok(digest) => Outcome::Landed {
            digest,
            since: None,
            ack: Instant::now(),
        },
        Err(e) => Outcome::Failed(e.into()),
    }
}
