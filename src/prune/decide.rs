//! Pure: which rule made each tag, and whether its `retain` still keeps it. A function of the
//! policy, what was seen in one repository, and the facts about branches, pull requests and the
//! time, all passed in.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::decision::{TagDecision, Verdict};
use crate::audit::pattern::Captures;
use crate::audit::record::is_fallback_tag;
use crate::audit::rules::Rules;
use crate::policy::{Alive, Policy, Retain, Rule};
use crate::{sanitize, template};
use tagguard_registry::Digest;

/// One tag as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub tag: String,
    pub digest: Digest,
    /// When tagguard's records say it wrote this tag at this digest (the latest such record).
    pub written: Option<DateTime<Utc>>,
    /// The image's `created` (an index: its first platform's).
    pub created: Option<DateTime<Utc>>,
    /// The tag holds the placeholder of a prune that was interrupted.
    pub placeholder: bool,
}

impl Seen {
    /// The tag's age reference: when tagguard wrote it, else when the image was created.
    pub fn born(&self) -> Option<DateTime<Utc>> {
        self.written.or(self.created)
    }
}

/// What is known outside the registry: live branches, open pull requests, the time. A fact that
/// could not be learned carries why.
#[derive(Debug, Clone)]
pub struct Facts {
    pub branches: Result<BTreeSet<String>, String>,
    pub open_prs: Result<BTreeSet<u64>, String>,
    pub now: DateTime<Utc>,
}

/// A referrer tag: the fallback tag of the referrers API (`sha256-<hex>`, tagguard's records)
/// or cosign's `sha256-<hex>.sig`, `.att`, `.sbom`.
pub fn is_referrer_tag(tag: &str) -> bool {
    let base = [".sig", ".att", ".sbom"]
        .iter()
        .find_map(|s| tag.strip_suffix(s))
        .unwrap_or(tag);
    is_fallback_tag(base)
}

/// Whether a tag of `rule` needs its age to be decided.
pub fn needs_age(rule: &Rule) -> bool {
    rule.retain
        .as_ref()
        .is_some_and(|r| r.newest.is_some() || r.younger_than.is_some())
}

/// One decision per tag of one repository, in tag order.
pub fn decide(
    image: &str,
    policy: &Policy,
    rules: &Rules,
    seen: &[Seen],
    facts: &Facts,
) -> Vec<TagDecision> {
    let branches = Branches {
        env: template::environment(),
        live: facts.branches.as_ref().ok(),
        cache: RefCell::default(),
    };
    let matched: Vec<Option<(usize, Captures)>> =
        seen.iter().map(|s| rules.rule_of(&s.tag)).collect();
    let ranks = newest_ranks(seen, &matched);
    let mut out: Vec<TagDecision> = seen
        .iter()
        .zip(&matched)
        .map(|(s, m)| {
            let (verdict, why, reason) = match m {
                _ if is_referrer_tag(&s.tag) => protect(
                    "referrer",
                    "a signature, attestation or record tag: kept with what it is about",
                ),
                None => protect("no-rule", "matches no rule of the policy"),
                Some((index, caps)) => {
                    let rule = &policy.rules[*index];
                    let rank = ranks.get(&s.tag).copied();
                    by_rule(&branches, rule, caps, s, rank, facts, &rules.unrecognised)
                }
            };
            TagDecision {
                image: image.to_owned(),
                tag: s.tag.clone(),
                digest: s.digest.clone(),
                verdict,
                why,
                reason,
                rule: m.as_ref().map(|(i, _)| *i),
            }
        })
        .collect();
    out.sort_by(|a, b| a.tag.cmp(&b.tag));
    out
}

type Outcome = (Verdict, Vec<&'static str>, String);

fn protect(why: &'static str, reason: &str) -> Outcome {
    (Verdict::Protect, vec![why], reason.to_owned())
}

fn by_rule(
    branches: &Branches<'_>,
    rule: &Rule,
    caps: &Captures,
    seen: &Seen,
    rank: Option<usize>,
    facts: &Facts,
    unrecognised: &[String],
) -> Outcome {
    let label = format!("rule {} ({:?})", rule.index + 1, rule.template);
    if rule.floating.is_some() {
        return protect("floating", &format!("floating tag of {label}"));
    }
    if rule.immutable {
        return protect("immutable", &format!("immutable tag of {label}"));
    }
    let Some(retain) = &rule.retain else {
        return protect("no-retain", &format!("{label} has no `retain`"));
    };
    if let Some(t) = unrecognised.first() {
        return protect(
            "unrecognised-rule",
            &format!(
                "the policy's template {t:?} cannot be recognised in tags, so this tag may be one of its tags"
            ),
        );
    }
    if seen.placeholder {
        return (
            Verdict::Delete,
            vec!["placeholder"],
            "holds the placeholder of an interrupted prune".to_owned(),
        );
    }
    let (keeps, ends) = retention(branches, rule, retain, caps, seen, rank, facts);
    let pick = |v: Vec<(&'static str, String)>| -> (Vec<&'static str>, String) {
        let why = v.iter().map(|(w, _)| *w).collect();
        let text: Vec<String> = v.into_iter().map(|(_, t)| t).collect();
        (why, text.join("; "))
    };
    if keeps.is_empty() {
        let (why, reason) = pick(ends);
        (Verdict::Delete, why, reason)
    } else {
        let (why, reason) = pick(keeps);
        (Verdict::Keep, why, reason)
    }
}

type Said = Vec<(&'static str, String)>;

/// What keeps the tag, and what no longer does.
fn retention(
    branches: &Branches<'_>,
    rule: &Rule,
    retain: &Retain,
    caps: &Captures,
    seen: &Seen,
    rank: Option<usize>,
    facts: &Facts,
) -> (Said, Said) {
    let (mut keeps, mut ends): (Said, Said) = (Vec::new(), Vec::new());
    match retain.while_alive {
        Some(Alive::BranchExists) => match (&facts.branches, caps.get("branch")) {
            (Err(why), _) => keeps.push(("liveness-unknown", format!("kept: {why}"))),
            (_, None) => keeps.push((
                "liveness-unknown",
                "kept: the tag names no branch".to_owned(),
            )),
            (Ok(_), Some(name)) => match branches.of(rule, caps, &seen.tag) {
                Some(b) => keeps.push(("branch-exists", format!("branch {b} exists"))),
                None => ends.push(("branch-gone", format!("no branch {name} any more"))),
            },
        },
        Some(Alive::PrOpen) => match (&facts.open_prs, caps.get("pr_number")) {
            (Err(why), _) => keeps.push(("liveness-unknown", format!("kept: {why}"))),
            (Ok(open), Some(n)) if n.parse().is_ok_and(|n: u64| open.contains(&n)) => {
                keeps.push(("pr-open", format!("pull request {n} is open")));
            }
            (Ok(_), Some(n)) => ends.push(("pr-closed", format!("pull request {n} is closed"))),
            (Ok(_), None) => keeps.push((
                "liveness-unknown",
                "kept: the tag names no pull request".to_owned(),
            )),
        },
        None => {}
    }
    let born = seen.born();
    if let Some(age) = &retain.younger_than {
        match born {
            None => keeps.push(("age-unknown", "kept: its age is unknown".to_owned())),
            Some(b)
                if facts
                    .now
                    .signed_duration_since(b)
                    .to_std()
                    .unwrap_or_default()
                    < age.duration =>
            {
                keeps.push(("younger-than", format!("younger than {}", age.text)));
            }
            Some(b) => ends.push((
                "older-than",
                format!(
                    "older than {} (from {})",
                    age.text,
                    b.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )),
        }
    }
    if let Some(n) = retain.newest {
        match rank {
            None => keeps.push(("age-unknown", "kept: its age is unknown".to_owned())),
            Some(r) if r < n => keeps.push(("newest", format!("among the {n} newest of its rule"))),
            Some(r) => ends.push((
                "not-newest",
                format!("number {} of its rule by age; {n} are kept", r + 1),
            )),
        }
    }
    (keeps, ends)
}

/// Which live branch a build of renders a tag with a rule: each rule renders each live branch
/// once per combination of the tag's other values (once in all for `br-{{ branch }}`), with
/// `branch` set as a build of that branch sets it.
struct Branches<'a> {
    env: minijinja::Environment<'static>,
    live: Option<&'a BTreeSet<String>>,
    /// (rule, the other values) → rendered tag → branch.
    cache: RefCell<HashMap<(usize, Captures), HashMap<String, String>>>,
}

impl Branches<'_> {
    fn of(&self, rule: &Rule, caps: &Captures, tag: &str) -> Option<String> {
        let mut others = caps.clone();
        others.remove("branch");
        let mut cache = self.cache.borrow_mut();
        let rendered = cache
            .entry((rule.index, others.clone()))
            .or_insert_with(|| {
                let mut out = HashMap::new();
                for b in self.live.into_iter().flatten() {
                    let mut vars = others.clone();
                    vars.insert("branch", sanitize::tag_component(b));
                    if let Ok(t) = template::render(&self.env, &rule.template, &vars) {
                        out.entry(t).or_insert_with(|| b.clone());
                    }
                }
                out
            });
        rendered.get(tag).cloned()
    }
}

/// For the tags of rules with `retain.newest`: their place by age within their rule, newest
/// first (ties by tag); tags of unknown age have none.
fn newest_ranks(seen: &[Seen], matched: &[Option<(usize, Captures)>]) -> HashMap<String, usize> {
    let mut by_rule: BTreeMap<usize, Vec<(DateTime<Utc>, &str)>> = BTreeMap::new();
    for (s, m) in seen.iter().zip(matched) {
        if let (Some((rule, _)), Some(born)) = (m, s.born()) {
            by_rule.entry(*rule).or_default().push((born, &s.tag));
        }
    }
    let mut ranks = HashMap::new();
    for (_, mut tags) in by_rule {
        tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        for (i, (_, tag)) in tags.into_iter().enumerate() {
            ranks.insert(tag.to_owned(), i);
        }
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(tag: &str, days_old: Option<i64>) -> Seen {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Seen {
            tag: tag.into(),
            digest: Digest::sha256_of(tag.as_bytes()),
            written: days_old.map(|d| now - chrono::Duration::days(d)),
            created: None,
            placeholder: false,
        }
    }

    fn decide_with(
        policy: &str,
        tags: &[Seen],
        branches: &[&str],
    ) -> Vec<(String, Verdict, String)> {
        let policy = Policy::parse("p.yml", policy).unwrap();
        let facts = Facts {
            branches: Ok(branches.iter().map(|b| (*b).to_owned()).collect()),
            open_prs: Err("no forge".into()),
            now: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        decide("r/app", &policy, &Rules::new(&policy), tags, &facts)
            .into_iter()
            .map(|d| (d.tag, d.verdict, d.reason))
            .collect()
    }

    #[test]
    fn branches_render_through_the_template_and_any_key_keeps() {
        let policy = "version: 1\ntags:\n  - template: \"{{ branch | lower }}-{{ short_sha }}\"\n    when: { branch: \".\" }\n    immutable: false\n    retain: { while: branch-exists, newest: 1 }\n";
        let tags = [
            seen("feature-a-abcdef1", Some(5)),
            seen("feature-b-abcdef2", Some(1)),
            seen("feature-c-abcdef3", Some(9)),
        ];
        let out = decide_with(policy, &tags, &["Feature/A"]);
        assert_eq!(out[0].1, Verdict::Keep, "{out:?}");
        assert_eq!(out[0].2, "branch Feature/A exists");
        assert_eq!(out[1].1, Verdict::Keep);
        assert_eq!(out[1].2, "among the 1 newest of its rule");
        assert_eq!(out[2].1, Verdict::Delete);
        assert_eq!(
            out[2].2,
            "no branch feature-c any more; number 3 of its rule by age; 1 are kept"
        );
    }

    #[test]
    fn an_unrecognisable_template_protects_what_might_be_its_tags() {
        let policy = "version: 1\ntags:\n  - template: \"{{ branch | upper }}\"\n    when: { branch: \".\" }\n  - template: \"br-{{ branch }}\"\n    when: { branch: \".\" }\n    immutable: false\n    retain: { while: branch-exists }\n";
        let out = decide_with(policy, &[seen("br-gone", None)], &[]);
        assert_eq!(out[0].1, Verdict::Protect, "{out:?}");
    }

    #[test]
    fn referrer_tags_and_rules_without_retain_are_protected() {
        let policy =
            "version: 1\ntags:\n  - template: \"edge-{{ short_sha }}\"\n    immutable: false\n";
        let sig = format!("sha256-{}.sig", "a".repeat(64));
        let out = decide_with(policy, &[seen("edge-abcdef1", None), seen(&sig, None)], &[]);
        assert!(
            out.iter().all(|(_, v, _)| *v == Verdict::Protect),
            "{out:?}"
        );
    }
}
