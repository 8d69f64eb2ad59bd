//! Pure: which rule made each tag, and whether its `retain` still keeps it. A function of the
//! policy, what was seen in one repository, and the facts about branches, pull requests and the
//! time, all passed in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::decision::{TagDecision, Verdict};
use crate::audit::pattern::{Captures, TagPattern};
use crate::audit::rules::is_fallback_tag;
use crate::policy::{Alive, Policy, Retain, Rule};
use crate::registry::Digest;
use crate::{sanitize, template};

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

/// The policy's rules as tag patterns (the ones audit uses), to say which rule a tag has the
/// shape of: the first in policy order, as `tags` keeps the first rule that renders a tag.
#[derive(Debug, Clone)]
pub struct Matcher {
    patterns: Vec<(usize, TagPattern)>,
    /// Templates whose filters change the value: their tags cannot be recognised.
    pub unrecognised: Vec<String>,
}

impl Matcher {
    pub fn new(policy: &Policy) -> Matcher {
        let mut patterns = Vec::new();
        let mut unrecognised = Vec::new();
        for rule in &policy.rules {
            match TagPattern::new(&rule.template, policy.short_sha_length) {
                Some(p) => patterns.push((rule.index, p)),
                None => unrecognised.push(rule.template.clone()),
            }
        }
        Matcher {
            patterns,
            unrecognised,
        }
    }

    /// The rule whose shape `tag` has, and the values it gave the variables.
    pub fn rule_of(&self, tag: &str) -> Option<(usize, Captures)> {
        self.patterns
            .iter()
            .find_map(|(i, p)| p.captures(tag).map(|c| (*i, c)))
    }
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
    matcher: &Matcher,
    seen: &[Seen],
    facts: &Facts,
) -> Vec<TagDecision> {
    let env = template::environment();
    let matched: Vec<Option<(usize, Captures)>> =
        seen.iter().map(|s| matcher.rule_of(&s.tag)).collect();
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
                    by_rule(&env, rule, caps, s, rank, facts, &matcher.unrecognised)
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
    env: &minijinja::Environment<'static>,
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
    let (keeps, ends) = retention(env, rule, retain, caps, seen, rank, facts);
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
    env: &minijinja::Environment<'static>,
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
            (Ok(live), Some(name)) => match live_branch(env, rule, caps, live, &seen.tag) {
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

/// The live branch whose build renders `tag` with this rule: the tag's other values kept,
/// `branch` set as a build of that branch sets it.
fn live_branch<'a>(
    env: &minijinja::Environment<'static>,
    rule: &Rule,
    caps: &Captures,
    live: &'a BTreeSet<String>,
    tag: &str,
) -> Option<&'a str> {
    let mut vars: BTreeMap<&'static str, String> = caps.clone();
    live.iter().map(String::as_str).find(|b| {
        vars.insert("branch", sanitize::tag_component(b));
        template::render(env, &rule.template, &vars).is_ok_and(|t| t == tag)
    })
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
