//! Pure: what the tags that stay need, and so what may be deleted by digest. Everything reachable
//! from a tag that is not deleted stays: an index's children (platforms, attestation manifests),
//! and any manifest whose `subject` is something that stays (signatures, SBOMs, tagguard's
//! records), with what those reach in turn.

use std::collections::{BTreeSet, HashMap};

use super::decision::{TagDecision, Verdict};
use tagguard_registry::Digest;

/// What one manifest refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// An index's manifests.
    pub children: Vec<Digest>,
    /// The manifest this one is a referrer of.
    pub subject: Option<Digest>,
}

/// What applying the plan does in one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletes {
    /// Tags to remove (as tags), with the digest they held when planned.
    pub tags: Vec<(String, Digest)>,
    /// Child manifests (of an index) to delete by digest, before the indexes: nothing that
    /// stays reaches them.
    pub children: Vec<Digest>,
    /// The manifests of deleted tags to delete by digest: nothing that stays reaches them.
    pub digests: Vec<Digest>,
}

/// Every digest the tags that stay reach.
pub fn reachable(decisions: &[TagDecision], links: &HashMap<Digest, Links>) -> BTreeSet<Digest> {
    let mut reached: BTreeSet<Digest> = BTreeSet::new();
    let mut todo: Vec<Digest> = decisions
        .iter()
        .filter(|d| d.verdict != Verdict::Delete)
        .map(|d| d.digest.clone())
        .collect();
    loop {
        while let Some(d) = todo.pop() {
            if reached.insert(d.clone())
                && let Some(l) = links.get(&d)
            {
                todo.extend(l.children.iter().cloned());
            }
        }
        // Referrers of what stays stay too, with what they reach.
        todo.extend(
            links
                .iter()
                .filter(|(d, l)| {
                    !reached.contains(*d) && l.subject.as_ref().is_some_and(|s| reached.contains(s))
                })
                .map(|(d, _)| d.clone()),
        );
        if todo.is_empty() {
            return reached;
        }
    }
}

/// The deletes of one repository's decisions: every `delete` tag, and each manifest of a deleted
/// tag (and its children) that nothing staying reaches.
pub fn deletes(decisions: &[TagDecision], links: &HashMap<Digest, Links>) -> Deletes {
    let keep = reachable(decisions, links);
    let mut out = Deletes::default();
    let mut listed = BTreeSet::new();
    for d in decisions.iter().filter(|d| d.verdict == Verdict::Delete) {
        out.tags.push((d.tag.clone(), d.digest.clone()));
        if keep.contains(&d.digest) || !listed.insert(d.digest.clone()) {
            continue;
        }
        out.digests.push(d.digest.clone());
        let children = links.get(&d.digest).map(|l| l.children.as_slice());
        for c in children.unwrap_or_default() {
            if !keep.contains(c) && listed.insert(c.clone()) {
                out.children.push(c.clone());
            }
        }
    }
    out
}

/// What in `deletes` would touch something that stays: a tag not decided `delete`, or a digest
/// something staying reaches. Empty by construction ([`deletes`]); checked again before any
/// write, so that a mistake in the planner stops the run instead of losing an image.
pub fn violations(
    decisions: &[TagDecision],
    links: &HashMap<Digest, Links>,
    deletes: &Deletes,
) -> Vec<String> {
    let keep = reachable(decisions, links);
    let mut out = Vec::new();
    for (tag, _) in &deletes.tags {
        if !decisions
            .iter()
            .any(|d| &d.tag == tag && d.verdict == Verdict::Delete)
        {
            out.push(format!("tag {tag} is not decided `delete`"));
        }
    }
    let digests = deletes.children.iter().chain(&deletes.digests);
    for digest in digests.filter(|d| keep.contains(*d)) {
        out.push(format!("{digest} is needed by a tag that stays"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn tag(name: &str, digest: Digest, verdict: Verdict) -> TagDecision {
        TagDecision {
            image: "r/app".into(),
            tag: name.into(),
            digest,
            verdict,
            why: vec![],
            reason: String::new(),
            rule: None,
        }
    }

    #[test]
    fn shared_digests_platforms_and_referrers_stay() {
        // 1.1.0 is an index over 10 and 11; br-a shares 1.0.0's digest 1; br-b points at
        // platform 11; br-c is alone on 3, an index over 30 and 31, one shared with release 4's
        // index; 5 is a signature of 3 (subject), 6 a record of 1.
        let links = HashMap::from([
            (
                d(2),
                Links {
                    children: vec![d(10), d(11)],
                    subject: None,
                },
            ),
            (
                d(3),
                Links {
                    children: vec![d(30), d(31)],
                    subject: None,
                },
            ),
            (
                d(4),
                Links {
                    children: vec![d(31)],
                    subject: None,
                },
            ),
            (
                d(6),
                Links {
                    children: vec![],
                    subject: Some(d(1)),
                },
            ),
        ]);
        let decisions = vec![
            tag("1.0.0", d(1), Verdict::Protect),
            tag("1.1.0", d(2), Verdict::Protect),
            tag("2.0.0", d(4), Verdict::Protect),
            tag("br-a", d(1), Verdict::Delete),
            tag("br-b", d(11), Verdict::Delete),
            tag("br-c", d(3), Verdict::Delete),
        ];
        let plan = deletes(&decisions, &links);
        assert_eq!(plan.tags.len(), 3);
        assert_eq!(plan.children, vec![d(30)]);
        assert_eq!(plan.digests, vec![d(3)]);
        assert!(violations(&decisions, &links, &plan).is_empty());
        assert!(reachable(&decisions, &links).contains(&d(6)));
    }

    #[test]
    fn a_referrer_tagged_by_a_deleted_tag_stays_when_its_subject_stays() {
        let links = HashMap::from([(
            d(5),
            Links {
                children: vec![d(50)],
                subject: Some(d(1)),
            },
        )]);
        let decisions = vec![
            tag("1.0.0", d(1), Verdict::Protect),
            tag("br-x", d(5), Verdict::Delete),
        ];
        let plan = deletes(&decisions, &links);
        assert!(
            plan.digests.is_empty() && plan.children.is_empty(),
            "{plan:?}"
        );
    }

    #[test]
    fn a_planner_mistake_is_a_violation() {
        let decisions = vec![
            tag("1.0.0", d(1), Verdict::Protect),
            tag("br", d(2), Verdict::Delete),
        ];
        let wrong = Deletes {
            tags: vec![("1.0.0".into(), d(1))],
            children: vec![],
            digests: vec![d(1)],
        };
        assert_eq!(violations(&decisions, &HashMap::new(), &wrong).len(), 2);
    }
}
