//! Any text as an image reference (`--source`, `--image`, the policy's `image:`): never a panic;
//! an accepted reference prints as a reference that parses back to itself, with a valid tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagguard_registry::Reference;
use tagguard_registry::fuzzing::validate_tag;

fuzz_target!(|input: &str| {
    let Ok(r) = input.parse::<Reference>() else {
        return;
    };
    let printed = r.to_string();
    let again: Reference = printed
        .parse()
        .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, r, "{input:?} -> {printed:?}");
    if let Some(t) = &r.tag {
        assert!(validate_tag(t).is_ok(), "{t:?}");
    }
    assert!(!r.repository.is_empty() && !r.registry.is_empty());
    assert!(
        !r.repository.contains(['@', ':', ' ', '\n']),
        "{:?}",
        r.repository
    );
    let _ = r.manifest_ref();
    let _ = r.with_tag("1.0");
});
