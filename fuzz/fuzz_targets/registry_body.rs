//! Any bytes as what a registry or token server answers, through every parser the client runs on
//! bodies and headers: error bodies (and the recognizer of registries' refusals), tag list pages,
//! token responses, `Docker-Content-Digest`, `Retry-After`. Never a panic; whatever is accepted
//! keeps its invariants (digests print as they parsed, waits are capped).
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tagguard_registry::Digest;
use tagguard_registry::fuzzing::{MAX_TOKEN_LIFETIME, parse_token_response, token_error_message};
use tagguard_registry::fuzzing::parse_tag_page;
use tagguard_registry::fuzzing::{describe, error_entries};
use tagguard_registry::fuzzing::{recognise, recognise_text};
use tagguard_registry::RetryPolicy;
use tagguard_registry::fuzzing::parse_retry_after;

fuzz_target!(|data: &[u8]| {
    let entries = error_entries(data);
    let _ = describe(&entries);
    for status in [400, 401, 403, 404, 409, 412, 500] {
        let _ = recognise(status, &entries);
        let _ = recognise_text(status, data);
        let _ = token_error_message(data);
    }
    let _ = parse_tag_page(data);
    if let Ok((token, lifetime)) = parse_token_response(data) {
        assert!(!token.is_empty());
        assert!(lifetime >= Duration::from_secs(1) && lifetime <= MAX_TOKEN_LIFETIME);
        let _ = std::time::Instant::now() + lifetime;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.trim().parse::<Digest>() {
        assert_eq!(d.to_string(), text.trim());
        let _ = d.recompute(data);
    }
    let policy = RetryPolicy::default();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(after) = parse_retry_after(text, now) {
        assert!(policy.delay(0, Some(after)) <= policy.max_retry_after);
    }
});
