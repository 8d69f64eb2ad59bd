//! Images "built from" a given commit: their config carries the revision label the pre-push
//! hook compares.

use super::registry::Image;

/// An image whose config has `org.opencontainers.image.revision = revision` (no such label
/// when `None`), unique per call.
pub fn built_from(revision: Option<&str>) -> Image {
    let mut labels = serde_json::json!({});
    if let Some(r) = revision {
        labels["org.opencontainers.image.revision"] = r.into();
    }
    Image::with_labels(labels)
}
