//! Which template variables a rule's `when` guarantees a value for.
//!
//! A template may use a variable without guarding it (`default`, `is defined`) only when every
//! build in which the rule applies gives that variable a value. That is decided here, from the
//! condition alone, so `policy check` can prove a policy renders in every CI situation.

use std::collections::BTreeSet;

use super::condition::Condition;
use crate::template;

/// A set of variable names.
pub type Vars = BTreeSet<&'static str>;

/// Every build has these.
pub const ALWAYS: &[&str] = &["sha", "short_sha", "timestamp", "commit_timestamp"];
/// A release build has these.
pub const RELEASE: &[&str] = &["version", "major", "minor", "patch", "git_tag"];
/// A pull/merge request build has this.
pub const PULL_REQUEST: &[&str] = &["pr_number"];
/// A CI build (both a build ID and a build number are known) has these.
pub const CI: &[&str] = &["build_id", "build_number"];

/// The variables that have a value in every build where `condition` holds.
pub fn when_holds(condition: &Condition) -> Vars {
    let mut vars: Vars = ALWAYS.iter().copied().collect();
    match guarantee(condition, true) {
        Guarantee::Everything => vars.extend(template::VARIABLES.iter().map(|(n, _)| *n)),
        Guarantee::Some(more) => vars.extend(more),
    }
    vars
}

/// What a condition guarantees; `Everything` for a condition that can never hold (so a rule
/// under it never renders, and the intersection with it changes nothing).
enum Guarantee {
    Everything,
    Some(Vars),
}

/// What holds when `c` evaluates to `value`.
fn guarantee(c: &Condition, value: bool) -> Guarantee {
    let some = |names: &[&[&'static str]]| {
        Guarantee::Some(names.iter().flat_map(|n| n.iter().copied()).collect())
    };
    match (c, value) {
        (Condition::Not(inner), _) => guarantee(inner, !value),
        (Condition::Always, false) => Guarantee::Everything,
        (Condition::All(parts), true) | (Condition::Any(parts), false) => {
            union(parts.iter().map(|p| guarantee(p, value)))
        }
        (Condition::Any(parts), true) | (Condition::All(parts), false) => {
            intersection(parts.iter().map(|p| guarantee(p, value)))
        }
        (_, false) => some(&[]),
        (Condition::Release | Condition::StableRelease | Condition::Version(_), true) => {
            some(&[RELEASE])
        }
        (Condition::Prerelease, true) => some(&[RELEASE, &["prerelease"]]),
        (Condition::PullRequest, true) => some(&[PULL_REQUEST]),
        (Condition::Ci, true) => some(&[CI]),
        (Condition::Branch(_), true) => some(&[&["branch"]]),
        (Condition::GitTag(_) | Condition::TagBuild, true) => some(&[&["git_tag"]]),
        (Condition::Always | Condition::Event(_), true) => some(&[]),
    }
}

fn union(parts: impl Iterator<Item = Guarantee>) -> Guarantee {
    let mut all = Vars::new();
    for part in parts {
        match part {
            Guarantee::Everything => return Guarantee::Everything,
            Guarantee::Some(vars) => all.extend(vars),
        }
    }
    Guarantee::Some(all)
}

fn intersection(parts: impl Iterator<Item = Guarantee>) -> Guarantee {
    let mut common: Option<Vars> = None;
    for part in parts {
        if let Guarantee::Some(vars) = part {
            common = Some(match common {
                None => vars,
                Some(c) => c.intersection(&vars).copied().collect(),
            });
        }
    }
    common.map_or(Guarantee::Everything, Guarantee::Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn extra(c: &Condition) -> Vec<&'static str> {
        when_holds(c)
            .into_iter()
            .filter(|v| !ALWAYS.contains(v))
            .collect()
    }

    fn branch() -> Condition {
        Condition::Branch(Regex::new("^main$").unwrap())
    }

    #[test]
    fn leaves() {
        assert_eq!(extra(&Condition::Always), Vec::<&str>::new());
        assert_eq!(
            extra(&Condition::Release),
            ["git_tag", "major", "minor", "patch", "version"]
        );
        assert!(extra(&Condition::Prerelease).contains(&"prerelease"));
        assert!(!extra(&Condition::StableRelease).contains(&"prerelease"));
        assert_eq!(extra(&Condition::PullRequest), ["pr_number"]);
        assert_eq!(extra(&Condition::Ci), ["build_id", "build_number"]);
        assert_eq!(extra(&branch()), ["branch"]);
    }

    #[test]
    fn combinations() {
        let all = Condition::All(vec![Condition::Ci, branch()]);
        assert_eq!(extra(&all), ["branch", "build_id", "build_number"]);
        let any = Condition::Any(vec![Condition::Ci, branch()]);
        assert_eq!(extra(&any), Vec::<&str>::new());
        let any = Condition::Any(vec![
            Condition::All(vec![Condition::Ci, branch()]),
            branch(),
        ]);
        assert_eq!(extra(&any), ["branch"]);
        // not (not branch) is branch; not (any [a, b]) is all [not a, not b].
        let twice = Condition::Not(Box::new(Condition::Not(Box::new(branch()))));
        assert_eq!(extra(&twice), ["branch"]);
        let none = Condition::Not(Box::new(Condition::Any(vec![
            Condition::Not(Box::new(Condition::PullRequest)),
            Condition::Not(Box::new(branch())),
        ])));
        assert_eq!(extra(&none), ["branch", "pr_number"]);
        // `not: pull-request` guarantees nothing, in particular no branch.
        assert_eq!(
            extra(&Condition::Not(Box::new(Condition::PullRequest))),
            Vec::<&str>::new()
        );
    }
}
