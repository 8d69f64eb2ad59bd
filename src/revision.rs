//! Which commit an image in the registry was built from: its config's
//! `org.opencontainers.image.revision` label (docker/metadata-action and tagguard set it).
//! The pre-push hook asks it of a release's image tags; the planner of an immutable tag whose
//! rule says `on-conflict: keep-same-revision`.

use serde_json::Value;

use crate::registry::{Digest, Manifest, RegistryClient};

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

/// An image in a repository, and the commit its config says it was built from.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest the reference names (an index for a multi-platform image).
    pub manifest: Manifest,
    pub revision: Option<String>,
}

/// Reads the image `reference` (a tag or digest) names in `repo`: `None` when there is none.
/// An index leads to one platform manifest, and that to its config.
pub async fn built(
    client: &RegistryClient,
    repo: &str,
    reference: &str,
) -> Result<Option<Built>, String> {
    let Some(top) = client
        .get_manifest(repo, reference)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let mut manifest = top.clone();
    for _ in 0..2 {
        match next(&manifest.bytes)? {
            Next::Config(digest) => {
                let digest: Digest = digest
                    .parse()
                    .map_err(|e| format!("config digest {digest:?}: {e}"))?;
                let config = read_config(client, repo, &digest).await?;
                return Ok(Some(Built {
                    manifest: top,
                    revision: revision(&config)?,
                }));
            }
            Next::Manifest(digest) => {
                manifest = client
                    .get_manifest(repo, &digest)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("the platform manifest {digest} is missing"))?;
            }
        }
    }
    Err("an index inside an index: not an image".to_owned())
}

/// Whether a revision label names `commit` (a full hash): the full hash, or an abbreviation of
/// at least 7 hex digits, in any case.
pub fn names_commit(label: &str, commit: &str) -> bool {
    let label = label.trim();
    label.len() >= 7
        && label.len() <= commit.len()
        && label.chars().all(|c| c.is_ascii_hexdigit())
        && commit[..label.len()].eq_ignore_ascii_case(label)
}

/// Image configs are small; a larger blob is not one.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

async fn read_config(
    client: &RegistryClient,
    repo: &str,
    digest: &Digest,
) -> Result<Vec<u8>, String> {
    let mut response = client
        .get_blob(repo, digest)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the image config {digest}: {e}"))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(format!("the image config {digest} is too large to be one"));
        }
    }
    match digest.recompute(&bytes) {
        Some(actual) if actual != *digest => {
            Err(format!("the image config {digest} read back as {actual}"))
        }
        _ => Ok(bytes),
    }
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
    fn a_label_names_a_commit_in_full_or_by_seven_hex_digits_or_more() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert!(names_commit(commit, commit));
        assert!(names_commit("0123456", commit));
        assert!(names_commit(" 0123456789ABCDEF ", commit));
        assert!(!names_commit("012345", commit));
        assert!(!names_commit("1123456", commit));
        assert!(!names_commit("v1.2.3", commit));
        assert!(!names_commit(&format!("{commit}0"), commit));
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
