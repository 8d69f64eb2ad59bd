//! The tiny manifest a tag is pointed at so that deleting it by digest removes the tag, on
//! registries that delete by digest only (CNCF distribution 2.8): an OCI artifact whose config is
//! the empty descriptor, with no layers, naming the tag it retires (so that no two are alike).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::audit::record::{EMPTY_CONTENT, EMPTY_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use tagguard_registry::Digest;

pub const ARTIFACT_TYPE: &str = "application/vnd.tagguard.placeholder.v1";
pub const MEDIA_TYPE: &str = MANIFEST_MEDIA_TYPE;
const TAG: &str = "io.tagguard.placeholder.tag";

/// The placeholder for retiring `tag` at `time`: bytes exactly as put.
pub fn manifest(tag: &str, time: DateTime<Utc>) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": Digest::sha256_of(EMPTY_CONTENT).to_string(),
            "size": EMPTY_CONTENT.len(),
        },
        "layers": [],
        "annotations": {
            TAG: tag,
            "org.opencontainers.image.created": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
    })
    .to_string()
    .into_bytes()
}

/// Whether a manifest is a placeholder (left behind when a prune was interrupted).
pub fn is_placeholder(manifest: &Value) -> bool {
    manifest["artifactType"] == ARTIFACT_TYPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised_and_differ_per_tag() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let a = manifest("br-a", t);
        assert_ne!(a, manifest("br-b", t));
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert!(is_placeholder(&v));
        assert!(!is_placeholder(&serde_json::json!({"config": {}})));
    }
}
