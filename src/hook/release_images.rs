//! Which image tags a release would claim: the immutable tags the policy gives the release's
//! commit *because* it is a release (`1.4.2`), not those any build of the commit gets
//! (`sha-1a2b3c4`). Pure: the commit and its time come from the caller.

use chrono::{DateTime, Utc};

use crate::context::Context;
use crate::policy::{OnConflict, Policy};
use crate::tags::{self, ComputeError};

/// An image tag a release claims, and what its rule says an existing image of it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRef {
    /// `image:tag`.
    pub reference: String,
    pub on_conflict: OnConflict,
}

/// `image:tag` references of the release tag `git_tag` at `commit`, for `images` (the policy's
/// own when empty).
pub fn immutable_release_refs(
    policy: &Policy,
    git_tag: &str,
    commit: &str,
    commit_time: DateTime<Utc>,
    images: &[String],
) -> Result<Vec<ReleaseRef>, ComputeError> {
    let plain = Context::for_commit(commit, commit_time);
    let release = Context {
        git_tags: vec![git_tag.to_owned()],
        ci_tag: Some(git_tag.to_owned()),
        ..plain.clone()
    };
    let with = tags::compute(policy, &release, images)?;
    // A policy whose rules render only for releases (`{{ version }}` without `when: release`)
    // cannot compute a plain build: then every immutable tag counts, which costs lookups only.
    let common: Vec<String> = tags::compute(policy, &plain, images)
        .map(|c| c.tags.into_iter().map(|t| t.tag).collect())
        .unwrap_or_default();
    let tags: Vec<(&str, OnConflict)> = with
        .tags
        .iter()
        .filter(|t| t.immutable && t.floating.is_none() && !common.contains(&t.tag))
        .map(|t| (t.tag.as_str(), t.on_conflict))
        .collect();
    Ok(with
        .images
        .iter()
        .flat_map(|image| {
            tags.iter().map(move |(tag, on_conflict)| ReleaseRef {
                reference: format!("{image}:{tag}"),
                on_conflict: *on_conflict,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn immutable_release_refs(
        policy: &Policy,
        git_tag: &str,
        commit: &str,
        commit_time: DateTime<Utc>,
        images: &[String],
    ) -> Result<Vec<String>, ComputeError> {
        super::immutable_release_refs(policy, git_tag, commit, commit_time, images)
            .map(|refs| refs.into_iter().map(|r| r.reference).collect())
    }

    const SHA: &str = "1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b";

    fn time() -> DateTime<Utc> {
        DateTime::from_timestamp(1_704_164_645, 0).unwrap()
    }

    #[test]
    fn only_the_immutable_tags_the_release_brings() {
        let policy = Policy::parse(
            "p.yml",
            "version: 1\nimages: [r.example/app, mirror.example/app]\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: \"{{ major }}.{{ minor }}\"\n    floating: minor\n    when: stable-release\n  - template: \"v{{ version }}-rc\"\n    when: prerelease\n  - \"sha-{{ short_sha }}\"\n",
        )
        .unwrap();
        let refs = immutable_release_refs(&policy, "v1.4.2", SHA, time(), &[]).unwrap();
        assert_eq!(refs, ["r.example/app:1.4.2", "mirror.example/app:1.4.2"]);
        let refs = immutable_release_refs(
            &policy,
            "v2.0.0-rc.1",
            SHA,
            time(),
            &["other.example/x".to_owned()],
        )
        .unwrap();
        assert_eq!(
            refs,
            [
                "other.example/x:2.0.0-rc.1",
                "other.example/x:v2.0.0-rc.1-rc"
            ]
        );
    }

    #[test]
    fn a_policy_that_renders_only_for_releases_is_refused_when_it_loads() {
        // `{{ version }}` without `when: release` cannot render a plain build: the policy
        // check rejects it, so the hook never meets such a policy.
        let err = Policy::parse(
            "p.yml",
            "version: 1\nimage: r.example/app\ntags: [\"{{ version }}\", \"sha-{{ short_sha }}\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            err.problems[0].message,
            "`version` may have no value when this rule applies"
        );
    }

    #[test]
    fn the_default_policy_claims_the_version_tag() {
        let policy = Policy::embedded_default();
        let refs =
            immutable_release_refs(&policy, "v1.4.2", SHA, time(), &["r.example/app".into()])
                .unwrap();
        assert_eq!(refs, ["r.example/app:1.4.2"]);
    }
}
