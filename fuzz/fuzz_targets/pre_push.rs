//! Any bytes as the pre-push hook's stdin (git writes it, but a chained hook or a wrapper may
//! not): never a panic; what parses is reviewed against the default release pattern without
//! panicking, and every ref it accepts has no whitespace in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagguard::hook::{pre_push, pushed_ref};
use tagguard::policy::ReleasePattern;

fuzz_target!(|input: &str| {
    let Ok(refs) = pushed_ref::parse_lines(input) else {
        return;
    };
    for r in &refs {
        assert!(!r.remote_ref.contains(char::is_whitespace), "{r:?}");
        assert!(!r.local_ref.contains(char::is_whitespace), "{r:?}");
    }
    let _ = pre_push::pushes_tags(&refs);
    let _ = pre_push::review_refs(&ReleasePattern::default(), &refs);
});
