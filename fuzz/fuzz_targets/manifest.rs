//! Any bytes as a manifest or index (from a registry, an OCI layout or the Docker engine), as
//! push parses them to find the blobs and child manifests to copy: never a panic; what is
//! accepted has valid digests, and an index has no config or layers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagguard_registry::Digest;
use tagguard_registry::{is_index, parse_manifest};

fuzz_target!(|data: &[u8]| {
    let _ = tagguard::layout::media_type_of(data);
    let declared = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned));
    let Ok(parts) = parse_manifest(data) else {
        return;
    };
    for d in parts.blobs.iter().chain(&parts.manifests) {
        let again: Digest = d
            .digest
            .to_string()
            .parse()
            .expect("a parsed digest prints validly");
        assert_eq!(again, d.digest);
        assert!(!d.digest.to_string().contains('/'), "{}", d.digest);
    }
    if declared.as_deref().is_some_and(is_index) {
        assert!(parts.blobs.is_empty() && parts.config.is_none());
    }
    if let Some(config) = &parts.config {
        assert_eq!(Some(config), parts.blobs.first().map(|b| &b.digest));
    }
});
