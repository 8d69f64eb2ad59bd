//! What to do with each image × tag, given where the tag points now and what would be pushed.
//! Pure: the registry is observed elsewhere ([`super::observe`]).

use std::fmt;

use semver::Version;
use serde::Serialize;

use crate::finding::{Finding, Severity, code};
use crate::policy::{Floating, OnConflict};
use crate::revision::Evidence;
use crate::tags::ComputedTag;
use tagguard_registry::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The tag does not exist yet (nor, perhaps, the repository).
    Create,
    /// The tag already points at the image to be pushed.
    Unchanged,
    /// A mutable or floating tag points elsewhere and will be moved.
    Move,
    /// An immutable tag points elsewhere, or exists while nothing proves it is the same image.
    Refuse,
    /// A floating tag stays where it is: a newer release holds it (it only moves forward), or
    /// this is a pre-release.
    Skip,
    /// An immutable tag holds another build of this very commit (its revision label, else
    /// tagguard's record of its push, says so) and its rule says `on-conflict:
    /// keep-same-revision`: it stays as it is (a CI re-run, or a release of a commit CI already
    /// built), and the image's other tags are written onto that build (adoption).
    Keep,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Create,
        Action::Unchanged,
        Action::Move,
        Action::Refuse,
        Action::Skip,
        Action::Keep,
    ];

    /// The one name of an action, in text, JSON and CI outputs.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Unchanged => "unchanged",
            Action::Move => "move",
            Action::Refuse => "refuse",
            Action::Skip => "skip",
            Action::Keep => "keep",
        }
    }

    /// Whether carrying it out writes the tag.
    pub fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Move)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Why a tag was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The immutable tag points at another digest than the one to be pushed.
    PointsElsewhere,
    /// The immutable tag exists and no source image was given to compare it with.
    NoSourceToCompare,
}

/// Why a floating tag was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A higher stable release in the tag's scope is already in the repository.
    NewerRelease,
    /// Pre-releases never move floating tags.
    Prerelease,
    /// Another writer moved the tag after this push looked it up: to a release at least as new
    /// as this one (`held_by`), or to an image that is not known as a release of its scope.
    /// Floating tags only move forward.
    MovedMeanwhile,
}

/// What was observed for one image × tag, to decide on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen<'a> {
    /// Where the tag points now; `None` when it does not exist.
    pub current: Option<&'a Digest>,
    /// The manifest digest to be pushed, when known before pushing.
    pub desired: Option<&'a Digest>,
    /// Whether the tag already holds the image to be pushed; `None` without a source.
    pub same_image: Option<bool>,
    /// For a floating tag: why it must not move, with the newer release holding its scope.
    pub hold: Option<(SkipReason, Option<&'a Version>)>,
    /// For an immutable tag under `on-conflict: keep-same-revision` that holds another image:
    /// what says which commit that image was built from (`Some(None)`: nothing does), read
    /// from the registry ([`crate::revision::built`]).
    pub revision: Option<Option<&'a Evidence>>,
    /// Whether that evidence names this build's commit.
    pub same_revision: bool,
}

/// The decision for one image × tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The image name as the policy gave it (`ghcr.io/acme/app`).
    pub image: String,
    pub tag: String,
    pub action: Action,
    pub immutable: bool,
    /// `latest`, `major`, `minor` or null.
    pub floating: Option<Floating>,
    /// Where the tag points now; null when it does not exist.
    pub current: Option<Digest>,
    /// What would be pushed; null when no source was given.
    pub desired: Option<Digest>,
    /// The number of the policy rule that made this tag (from 1, as in messages and `tags
    /// --format json`), and its template.
    pub rule: usize,
    /// How messages name the rule: `rule 5 (.tagguard.yml:16)`.
    pub rule_label: String,
    pub template: String,
    /// The rule's `on-conflict`.
    pub on_conflict: OnConflict,
    /// Set when `action` is `refuse`.
    pub reason: Option<RefusalReason>,
    /// Set when `action` is `skip`.
    pub skip_reason: Option<SkipReason>,
    /// For a skipped floating tag: the newer release that holds its scope.
    pub held_by: Option<String>,
    /// What says which commit the image an existing immutable tag holds was built from, when
    /// it was read (`on-conflict: keep-same-revision`): `{commit, from: label | record,
    /// ci_run}`; null otherwise or when nothing says.
    pub revision: Option<Evidence>,
}

impl Decision {
    pub fn is_refusal(&self) -> bool {
        self.action == Action::Refuse
    }

    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// The planner's finding for a refusal.
    pub fn finding(&self) -> Option<Finding> {
        let (code, help) = match self.reason? {
            RefusalReason::PointsElsewhere => (code::IMMUTABLE_TAG_TAKEN, self.ways_out()),
            RefusalReason::NoSourceToCompare => (
                code::IMMUTABLE_TAG_UNPROVEN,
                "pass --source with the image to be pushed, so tagguard can tell whether the tag already holds it".to_owned(),
            ),
        };
        Some(
            Finding::new(code, Severity::Refusal, self.to_string())
                .about(self.reference())
                .help(help),
        )
    }
}

/// Decides for one tag of one image. A floating tag moves by design, so it is never held
/// immutable even if its rule says so; it only ever moves forward.
pub fn decide_one(image: &str, tag: &ComputedTag, policy: &str, seen: Seen<'_>) -> Decision {
    let undecided = Decision {
        image: image.to_owned(),
        tag: tag.tag.clone(),
        action: Action::Create,
        immutable: tag.immutable && tag.floating.is_none(),
        floating: tag.floating,
        current: None,
        desired: None,
        rule: tag.rule,
        rule_label: tag.rule_label(policy),
        template: tag.template.clone(),
        on_conflict: tag.on_conflict,
        reason: None,
        skip_reason: None,
        held_by: None,
        revision: None,
    };
    undecided.decided(seen)
}

impl Decision {
    /// This tag's decision for what `seen` observed.
    pub(super) fn decided(self, seen: Seen<'_>) -> Decision {
        let hold = seen.hold.filter(|_| self.floating.is_some());
        let keep = self.immutable
            && self.on_conflict == OnConflict::KeepSameRevision
            && seen.same_revision;
        let (action, reason) = match (seen.current, seen.same_image) {
            _ if hold.is_some() => (Action::Skip, None),
            (None, _) => (Action::Create, None),
            (Some(_), Some(true)) => (Action::Unchanged, None),
            (Some(_), _) if keep => (Action::Keep, None),
            (Some(_), Some(false)) if self.immutable => {
                (Action::Refuse, Some(RefusalReason::PointsElsewhere))
            }
            (Some(_), None) if self.immutable => {
                (Action::Refuse, Some(RefusalReason::NoSourceToCompare))
            }
            (Some(_), _) => (Action::Move, None),
        };
        Decision {
            action,
            current: seen.current.cloned(),
            desired: seen.desired.cloned(),
            reason,
            skip_reason: hold.map(|(r, _)| r),
            held_by: hold.and_then(|(_, v)| v).map(ToString::to_string),
            revision: seen.revision.flatten().cloned(),
            ..self
        }
    }
}

/// Whether `same` and `desired` agree: the tag holds the image to be pushed.
pub fn same_digest(current: Option<&Digest>, desired: Option<&Digest>) -> Option<bool> {
    match (current, desired) {
        (Some(c), Some(d)) => Some(c == d),
        _ => None,
    }
}

impl fmt::Display for Decision {
    /// One line a person can act on, e.g. for a refusal: which tag, where it points, what was to
    /// be pushed, and the rule that made it immutable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = |d: &Option<Digest>| {
            d.as_ref()
                .map_or_else(|| "nothing".to_owned(), Digest::to_string)
        };
        // What is pushed but has no digest before the push (a Docker engine image known by its
        // config) is this build.
        let desired = |d: &Option<Digest>| {
            d.as_ref()
                .map_or_else(|| "this build".to_owned(), Digest::to_string)
        };
        match (self.action, self.reason) {
            (Action::Refuse, Some(RefusalReason::PointsElsewhere)) => write!(
                f,
                "refusing to move immutable tag {}:{} from {} to {} ({} {:?})",
                self.image,
                self.tag,
                digest(&self.current),
                desired(&self.desired),
                self.rule_label,
                self.template
            ),
            (Action::Refuse, _) => write!(
                f,
                "immutable tag {}:{} already exists at {} and no --source was given to prove it is the same image ({} {:?})",
                self.image,
                self.tag,
                digest(&self.current),
                self.rule_label,
                self.template
            ),
            (Action::Create, _) => write!(f, "create {}:{}", self.image, self.tag),
            (Action::Keep, _) => write!(
                f,
                "keep {}:{} at {}: it holds an earlier build of this commit ({}), and {} says on-conflict: keep-same-revision; this build's other tags go onto it",
                self.image,
                self.tag,
                digest(&self.current),
                self.revision
                    .as_ref()
                    .map_or_else(|| "its revision".to_owned(), Evidence::says),
                self.rule_label
            ),
            (Action::Skip, _) if self.skip_reason == Some(SkipReason::MovedMeanwhile) => {
                match &self.held_by {
                    Some(v) => write!(
                        f,
                        "leave floating tag {}:{} alone: another writer moved it to release {v} ({}), at least as new as this push's (floating tags only move forward)",
                        self.image,
                        self.tag,
                        digest(&self.current)
                    ),
                    None => write!(
                        f,
                        "leave floating tag {}:{} alone: another writer moved it to {} after this push looked it up, an image no release tag of its scope holds (floating tags only move forward)",
                        self.image,
                        self.tag,
                        digest(&self.current)
                    ),
                }
            }
            (Action::Skip, _) => match &self.held_by {
                Some(v) => write!(
                    f,
                    "leave floating tag {}:{} alone: release {v} is newer (floating tags only move forward)",
                    self.image, self.tag
                ),
                None => write!(
                    f,
                    "leave floating tag {}:{} alone: pre-releases do not move floating tags",
                    self.image, self.tag
                ),
            },
            (Action::Unchanged, _) => write!(
                f,
                "{}:{} already at {}",
                self.image,
                self.tag,
                digest(&self.current)
            ),
            (Action::Move, _) => write!(
                f,
                "move {}:{} from {} to {}",
                self.image,
                self.tag,
                digest(&self.current),
                desired(&self.desired)
            ),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::revision::EvidenceFrom;

    pub(in crate::plan) fn tag(
        name: &str,
        immutable: bool,
        floating: Option<Floating>,
    ) -> ComputedTag {
        ComputedTag {
            tag: name.into(),
            immutable,
            floating,
            rule: 3,
            rule_line: 1,
            on_conflict: crate::policy::OnConflict::Refuse,
            template: "{{ version }}".into(),
        }
    }

    pub(in crate::plan) fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    pub(in crate::plan) fn seen<'a>(
        current: Option<&'a Digest>,
        desired: Option<&'a Digest>,
    ) -> Seen<'a> {
        Seen {
            current,
            desired,
            same_image: same_digest(current, desired),
            ..Seen::default()
        }
    }

    #[test]
    fn an_earlier_build_of_this_commit_is_kept_only_when_the_rule_says_so() {
        let mut keeping = tag("sha-0123456", true, None);
        keeping.on_conflict = OnConflict::KeepSameRevision;
        let (a, b) = (d('a'), d('b'));
        let evidence = |commit: &str, from| Evidence {
            commit: commit.into(),
            from,
            ci_run: Some("https://ci.example/run/1".into()),
        };
        let label = evidence("0123456789", EvidenceFrom::Record);
        let same = Seen {
            revision: Some(Some(&label)),
            same_revision: true,
            ..seen(Some(&a), Some(&b))
        };
        let kept = decide_one("r/app", &keeping, "p.yml", same);
        assert_eq!((kept.action, kept.reason), (Action::Keep, None));
        assert_eq!(kept.revision.as_ref(), Some(&label));
        assert!(
            kept.to_string().contains(
                "tagguard's record of its push (in https://ci.example/run/1) says 0123456789"
            ),
            "{kept}"
        );
        assert!(!kept.action.writes() && !kept.is_refusal());
        assert!(
            kept.to_string().contains("keep r/app:sha-0123456"),
            "{kept}"
        );
        assert!(kept.finding().is_none());
        // The rule did not ask for it: refused, and the help names the ways out.
        let refused = decide_one("r/app", &tag("sha-0123456", true, None), "p.yml", same);
        assert_eq!(refused.action, Action::Refuse);
        let help = refused.finding().unwrap().help.unwrap();
        assert!(help.contains("SOURCE_DATE_EPOCH"), "{help}");
        assert!(
            help.contains("keep-same-revision` on rule 3 (p.yml:1)"),
            "{help}"
        );
        // Another commit's image, or one without a label: refused, saying which.
        let theirs = evidence("fedcba9", EvidenceFrom::Label);
        let other = Seen {
            revision: Some(Some(&theirs)),
            same_revision: false,
            ..seen(Some(&a), Some(&b))
        };
        let r = decide_one("r/app", &keeping, "p.yml", other);
        assert_eq!(r.action, Action::Refuse);
        assert!(r.finding().unwrap().help.unwrap().contains("fedcba9"));
        let unlabelled = Seen {
            revision: Some(None),
            ..seen(Some(&a), Some(&b))
        };
        let r = decide_one("r/app", &keeping, "p.yml", unlabelled);
        assert_eq!(r.action, Action::Refuse);
        assert!(
            r.finding()
                .unwrap()
                .help
                .unwrap()
                .contains("no org.opencontainers.image.revision")
        );
        // Mutable and floating tags are never kept: they move.
        let mut floating = tag("latest", false, Some(Floating::Latest));
        floating.on_conflict = OnConflict::KeepSameRevision;
        assert_eq!(
            decide_one("r/app", &floating, "p.yml", same).action,
            Action::Move
        );
    }

    #[test]
    fn floating_tags_held_by_a_newer_release_are_skipped() {
        let floating = tag("latest", false, Some(Floating::Latest));
        let newer = Version::parse("2.0.0").unwrap();
        let (a, b) = (d('a'), d('b'));
        let mut s = seen(Some(&a), Some(&b));
        s.hold = Some((SkipReason::NewerRelease, Some(&newer)));
        let decision = decide_one("r/app", &floating, "p.yml", s);
        assert_eq!(decision.action, Action::Skip);
        assert_eq!(decision.held_by.as_deref(), Some("2.0.0"));
        assert!(decision.to_string().contains("release 2.0.0 is newer"));
        // Holds only apply to floating tags.
        let imm = tag("1.9.1", true, None);
        assert_eq!(decide_one("r/app", &imm, "p.yml", s).action, Action::Refuse);
    }

    #[test]
    fn the_decision_table() {
        let imm = tag("1.2.3", true, None);
        let mutable = tag("main", false, None);
        let floating = tag("1", true, Some(Floating::Major));
        let (a, b) = (d('a'), d('b'));
        let act = |t: &ComputedTag, cur: Option<&Digest>, des: Option<&Digest>| {
            decide_one("r/app", t, "p.yml", seen(cur, des)).action
        };
        for t in [&imm, &mutable, &floating] {
            assert_eq!(act(t, None, Some(&a)), Action::Create);
            assert_eq!(act(t, None, None), Action::Create);
            assert_eq!(act(t, Some(&a), Some(&a)), Action::Unchanged);
        }
        assert_eq!(act(&imm, Some(&a), Some(&b)), Action::Refuse);
        assert_eq!(act(&imm, Some(&a), None), Action::Refuse);
        assert_eq!(act(&mutable, Some(&a), Some(&b)), Action::Move);
        assert_eq!(act(&mutable, Some(&a), None), Action::Move);
        assert_eq!(act(&floating, Some(&a), Some(&b)), Action::Move);
    }

    #[test]
    fn a_refusal_says_which_tag_where_what_and_which_rule() {
        let r = decide_one(
            "ghcr.io/acme/app",
            &tag("1.2.3", true, None),
            "p.yml",
            seen(Some(&d('a')), Some(&d('b'))),
        );
        assert_eq!(r.reason, Some(RefusalReason::PointsElsewhere));
        let text = r.to_string();
        assert!(text.contains("ghcr.io/acme/app:1.2.3"), "{text}");
        assert!(
            text.contains(&format!("from {} to {}", d('a'), d('b'))),
            "{text}"
        );
        assert!(
            text.contains("rule 3 (p.yml:1) \"{{ version }}\""),
            "{text}"
        );
        let r = decide_one(
            "ghcr.io/acme/app",
            &tag("1.2.3", true, None),
            "p.yml",
            seen(Some(&d('a')), None),
        );
        assert_eq!(r.reason, Some(RefusalReason::NoSourceToCompare));
        assert!(r.to_string().contains("no --source"));
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(decide_one(
            "r/app",
            &tag("1", true, Some(Floating::Major)),
            "p.yml",
            seen(Some(&d('a')), None),
        ))
        .unwrap();
        assert_eq!(v["image"], "r/app");
        assert_eq!(v["tag"], "1");
        assert_eq!(v["action"], "move");
        assert_eq!(v["immutable"], false);
        assert_eq!(v["floating"], "major");
        assert_eq!(v["current"], d('a').to_string());
        assert_eq!(v["desired"], serde_json::Value::Null);
        assert_eq!(v["reason"], serde_json::Value::Null);
        let v = serde_json::to_value(decide_one(
            "r/app",
            &tag("1.0.0", true, None),
            "p.yml",
            seen(Some(&d('a')), Some(&d('b'))),
        ))
        .unwrap();
        assert_eq!(
            (v["action"].as_str(), v["reason"].as_str()),
            (Some("refuse"), Some("points_elsewhere"))
        );
    }
}
