//! Floating tags converge forward. A floating tag that another writer moved — found so right
//! before its write, or when read back — is decided again by version: which release does the
//! image it now holds belong to? The tags in its repository that hold the same image say it
//! (the one rule for releases and scopes, [`crate::release`]). Held by a release at
//! least as new as this push's, the tag is left; held by an older one, it is moved forward
//! again, in at most [`ROUNDS`] more rounds. See docs/push-protocol.md for why concurrent
//! releases end with every floating tag on the highest one.

use futures_util::StreamExt as _;

use crate::finding::{Finding, Severity, code};
use crate::plan::Held;
use crate::policy::Floating;
use crate::release::{self, Scope};
use tagguard_registry::{Digest, Reference, RegistryError};

use super::Applied;
use super::tag_write::{Look, Writer};
use super::verify::{Contested, holds, race};

/// Rounds a floating tag found on an older release after its read-back is moved forward again
/// (each round looks the tag up again, decides, writes, settles and reads back).
pub const ROUNDS: usize = 3;

/// Releases of a repository looked up, newest first, to tell which one a floating tag holds:
/// the releases written meanwhile are the newest; an image older than all of them is taken as
/// no known release (and left alone).
pub const CANDIDATES: usize = 32;

/// A floating tag to place: its reference, its kind, and the image it was found holding.
#[derive(Clone)]
pub struct Moved<'r> {
    pub reference: &'r Reference,
    pub kind: Floating,
    pub found: Digest,
}

/// Which release each moved floating tag now holds, compared with this push's release: one
/// tag list per repository, and one lookup per candidate release tag (newest
/// [`CANDIDATES`]), all at once.
pub async fn holders(writer: &Writer<'_>, moved: &[Moved<'_>]) -> Vec<Result<Held, String>> {
    let Some(version) = writer.version else {
        return moved.iter().map(|_| Ok(Held::Unknown)).collect();
    };
    let mut repositories: Vec<&Reference> = Vec::new();
    for m in moved {
        if !repositories
            .iter()
            .any(|r| r.registry == m.reference.registry && r.repository == m.reference.repository)
        {
            repositories.push(m.reference);
        }
    }
    let held = futures_util::future::join_all(
        repositories
            .iter()
            .map(|r| release_tags(writer, r, version)),
    )
    .await;
    moved
        .iter()
        .map(|m| {
            let k = repositories
                .iter()
                .position(|r| {
                    r.registry == m.reference.registry && r.repository == m.reference.repository
                })
                .expect("every moved tag's repository was listed");
            let tags = held[k].as_ref().map_err(Clone::clone)?;
            let holding: Vec<String> = tags
                .iter()
                .filter(|(_, d)| d.as_ref() == Some(&m.found))
                .map(|(t, _)| t.clone())
                .collect();
            let newest = release::newest_in_scope(
                &Scope::of(m.kind, version),
                holding.iter().map(String::as_str),
            );
            Ok(match newest {
                Some((v, _)) if release::cmp_precedence(&v, version).is_ge() => Held::Release(v),
                Some(_) => Held::Older,
                None => Held::Unknown,
            })
        })
        .collect()
}

/// The newest [`CANDIDATES`] release tags of `reference`'s repository (the widest scope,
/// `latest`'s), each with the image it holds now.
async fn release_tags(
    writer: &Writer<'_>,
    reference: &Reference,
    version: &semver::Version,
) -> Result<Vec<(String, Option<Digest>)>, String> {
    let client = writer
        .registries
        .client(&reference.registry)
        .map_err(|e| e.to_string())?;
    let tags = match client.list_tags(&reference.repository).await {
        Err(RegistryError::UnknownRepository { .. }) => Vec::new(),
        other => other.map_err(|e| e.to_string())?,
    };
    let latest = Scope::of(Floating::Latest, version);
    let candidates: Vec<String> =
        release::releases_in_scope(&latest, tags.iter().map(String::as_str))
            .into_iter()
            .take(CANDIDATES)
            .map(|(_, t)| t.to_owned())
            .collect();
    let looked = futures_util::stream::iter(candidates.iter().map(|tag| {
        let client = &client;
        async move {
            let r = Reference {
                tag: Some(tag.clone()),
                digest: None,
                ..reference.clone()
            };
            client.resolve(&r).await
        }
    }))
    .buffered(writer.registries.concurrency())
    .collect::<Vec<_>>()
    .await;
    candidates
        .into_iter()
        .zip(looked)
        .map(|(t, d)| d.map(|d| (t, d)).map_err(|e| e.to_string()))
        .collect()
}

/// For every floating tag of `items` that changed since it was decided (to another image than
/// this push's): which release that image belongs to. Nothing is asked when none changed.
pub(super) async fn before_write(
    writer: &Writer<'_>,
    refs: &[&Reference],
    items: &[usize],
    looks: &[Result<Look, RegistryError>],
    applied: &Applied,
) -> Vec<Option<Result<Held, String>>> {
    let moved: Vec<Option<Moved<'_>>> = items
        .iter()
        .zip(looks)
        .map(|(&i, look)| {
            let d = &applied.decisions[i];
            let kind = d.floating?;
            let found = look.as_ref().ok()?.found.clone()?;
            if Some(&found) == d.current.as_ref() || Some(&found) == d.desired.as_ref() {
                return None;
            }
            Some(Moved {
                reference: refs[i],
                kind,
                found,
            })
        })
        .collect();
    let asked: Vec<Moved<'_>> = moved.iter().flatten().map(Clone::clone).collect();
    let mut answers = holders(writer, &asked).await.into_iter();
    moved
        .iter()
        .map(|m| m.as_ref().and_then(|_| answers.next()))
        .collect()
}

/// Decides the floating tags read back at another image by the release it belongs to: a
/// release at least as new as this push's keeps the tag (a warning); an older one is moved
/// forward again (returned); an image of no known release is a race. `None` when a contested
/// write is not proven.
pub(super) async fn place(
    writer: &Writer<'_>,
    refs: &[&Reference],
    contested: Vec<Contested>,
    applied: &mut Applied,
) -> Option<Vec<usize>> {
    if contested.is_empty() {
        return Some(Vec::new());
    }
    let moved: Vec<Moved<'_>> = contested
        .iter()
        .map(|c| Moved {
            reference: refs[c.index],
            kind: applied.decisions[c.index]
                .floating
                .expect("only floating tags are contested"),
            found: c.found.clone(),
        })
        .collect();
    let held = holders(writer, &moved).await;
    let mut behind = Vec::new();
    let mut proven = true;
    for (c, held) in contested.into_iter().zip(held) {
        let d = &applied.decisions[c.index];
        let subject = d.reference();
        let finding = match held {
            Ok(Held::Older) => {
                applied.decisions[c.index] = d.again(Some(&c.found), &Held::Older);
                behind.push(c.index);
                continue;
            }
            Ok(held @ Held::Release(_)) => {
                applied.decisions[c.index] = d.again(Some(&c.found), &held);
                let left = &applied.decisions[c.index];
                let release = left.held_by.clone().unwrap_or_default();
                applied.findings.push(
                    Finding::new(
                        code::MOVED_MEANWHILE,
                        Severity::Warning,
                        format!(
                            "the registry acknowledged the write of {subject} at {}, and another writer has since moved it forward to release {release} ({}): left there (floating tags only move forward)",
                            c.written, c.found
                        ),
                    )
                    .about(subject),
                );
                continue;
            }
            Ok(Held::Unknown) => race(&subject, Some(&c.written), Some(&c.found)),
            Err(e) => Finding::new(
                code::PUSH_FAILED,
                Severity::Error,
                format!(
                    "{subject} was written at {}, but reads back at {}, and which release that is could not be read: {e}",
                    c.written, c.found
                ),
            )
            .help("look the tag up, and run `tagguard audit`"),
        };
        applied.findings.push(finding.about(subject));
        proven = false;
    }
    proven.then_some(behind)
}

/// Floating tags still found on an older release after every round of moving them forward.
pub(super) fn still_behind(applied: &mut Applied, behind: &[usize]) {
    for &i in behind {
        let d = &applied.decisions[i];
        applied.findings.push(
            Finding::new(
                code::RACE,
                Severity::Error,
                format!(
                    "{} was moved forward {} more times and read back each time at an older release ({}): other pushes keep moving it back",
                    d.reference(),
                    ROUNDS,
                    holds(d.current.as_ref())
                ),
            )
            .about(d.reference())
            .help("run `tagguard audit` once the other pushes ended; re-run the push of the newest release to put the tag on it"),
        );
    }
}
