//! Which commit an image in the registry was built from: its config's
//! `org.opencontainers.image.revision` label (docker/metadata-action and tagguard set it).
//! Parsing only; the registry is asked in [`super::observe`].

use serde_json::Value;

pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// What a manifest leads to next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// An image manifest: its config blob.
    Config(String),
    /// An index (multi-platform): a platform manifest, linux/amd64 when there is one, else the
    /// first. All platforms of one build carry the same revision.
    Manifest(String),
}

pub fn next(manifest: &[u8]) -> Result<Next, String> {
    let v: Value =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON: {e}"))?;
    if let Some(digest) = v["config"]["digest"].as_str() {
        return Ok(Next::Config(digest.to_owned()));
    }
    let manifests = v["manifests"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("manifest has neither a config nor manifests")?;
    let amd64 = manifests
        .iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64");
    amd64.unwrap_or(&manifests[0])["digest"]
        .as_str()
        .map(|d| Next::Manifest(d.to_owned()))
        .ok_or_else(|| "index entry has no digest".to_owned())
}

/// The revision label of an image config, if it has one.
pub fn revision(config: &[u8]) -> Result<Option<String>, String> {
    let v: Value =
        serde_json::from_slice(config).map_err(|e| format!("image config is not JSON: {e}"))?;
    Ok(v["config"]["Labels"][REVISION_LABEL]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_manifests_lead_to_their_config() {
        let m = br#"{"schemaVersion":2,"config":{"digest":"sha256:c0"},"layers":[]}"#;
        assert_eq!(next(m).unwrap(), Next::Config("sha256:c0".into()));
    }

    #[test]
    fn indexes_lead_to_linux_amd64_else_the_first() {
        let m = br#"{"manifests":[{"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64"}},{"digest":"sha256:amd","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        assert_eq!(next(m).unwrap(), Next::Manifest("sha256:amd".into()));
        let m = br#"{"manifests":[{"digest":"sha256:one"}]}"#;
        assert_eq!(next(m).unwrap(), Next::Manifest("sha256:one".into()));
        assert!(next(br#"{"manifests":[]}"#).is_err());
    }

    #[test]
    fn the_revision_label_or_none() {
        let c = br#"{"config":{"Labels":{"org.opencontainers.image.revision":"abc1234"}}}"#;
        assert_eq!(revision(c).unwrap().as_deref(), Some("abc1234"));
        assert_eq!(revision(br#"{"config":{}}"#).unwrap(), None);
        assert_eq!(revision(br#"{"config":{"Labels":null}}"#).unwrap(), None);
        assert!(revision(b"not json").is_err());
    }
}
