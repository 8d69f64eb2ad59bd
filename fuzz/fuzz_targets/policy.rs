//! Any bytes as a policy file: never a panic, never a hang; an accepted policy computes tags
//! that are valid OCI tags or fails with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagguard::context::Context;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = tagguard::policy::Policy::parse("fuzz.yml", text) else { return };
    let ctx = Context {
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        branch: Some("feature/fuzz".into()),
        git_tags: vec!["v1.2.3-rc.1+b.7".into(), "api/v0.1.0".into()],
        ci_tag: None,
        pr_number: Some("7".into()),
        build_id: Some("99".into()),
        build_number: Some("3".into()),
        commit_time: chrono::DateTime::from_timestamp(1_700_000_000, 0),
        build_time: chrono::DateTime::from_timestamp(1_704_164_645, 0).unwrap(),
        dirty: false,
        ci: tagguard::ci::CiKind::None,
        source_url: None,
    };
    if let Ok(computed) = tagguard::tags::compute(&policy, &ctx, &[]) {
        for tag in computed.tags {
            assert_eq!(tagguard::sanitize::tag_problem(&tag.tag), None, "{:?}", tag.tag);
        }
    }
});
