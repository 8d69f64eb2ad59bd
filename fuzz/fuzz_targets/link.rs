//! Any `Link` header values (one per line) and the URL of the page they came with: never a
//! panic; a `next` target is text from inside `<…>` of the input, and joining it onto the page URL
//! (as the tag listing does) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagguard_registry::fuzzing::next_link_in;

fuzz_target!(|input: &str| {
    let Some(next) = next_link_in(input.split('\n')) else {
        return;
    };
    assert!(input.contains(&format!("<{next}")) || input.contains(next.as_str()));
    assert!(!next.contains('>'), "{next:?}");
    let page = url::Url::parse("https://r.example/v2/acme/app/tags/list?n=100").unwrap();
    let _ = page.join(&next);
});
