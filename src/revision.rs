//! Which commit an image in a registry was built from, and what says so. The evidence, in this
//! order: its config's `org.opencontainers.image.revision` label (docker/metadata-action and
//! `tagguard tags` give it); else the record tagguard left beside the image when it pushed it
//! (the commit and CI run of that push, [`crate::audit::record`]). The planner asks it of an
//! immutable tag whose rule says `on-conflict: keep-same-revision`, the pre-push hook of a
//! release's image tags: both with [`built`], both judging with [`names_commit`].
//!
//! Also the one reader of image configs ([`read_config`], one size limit) and of their labels
//! ([`labels`]), which `audit` uses too.

use serde::Serialize;
use serde_json::Value;

use crate::audit::record;
use tagguard_registry::{Digest, Manifest, RegistryClient, RegistryError};

pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";

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

/// The version and revision labels of an image config (blank labels are none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub version: Option<String>,
    pub revision: Option<String>,
}

pub fn labels(config: &[u8]) -> Result<Labels, String> {
    let v: Value =
        serde_json::from_slice(config).map_err(|e| format!("image config is not JSON: {e}"))?;
    let label = |k: &str| {
        v["config"]["Labels"][k]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    Ok(Labels {
        version: label(VERSION_LABEL),
        revision: label(REVISION_LABEL),
    })
}

/// What says which commit an image was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The commit, as the evidence names it (a label may abbreviate it).
    pub commit: String,
    /// `label` (its revision label) or `record` (tagguard's record of the push that wrote it).
    pub from: EvidenceFrom,
    /// For a record: the CI run that pushed the image, when the record names it.
    pub ci_run: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceFrom {
    Label,
    Record,
}

impl Evidence {
    /// Whether the evidence names `commit` (see [`names_commit`]).
    pub fn names(&self, commit: &str) -> bool {
        names_commit(&self.commit, commit)
    }

    /// `its org.opencontainers.image.revision label says 0123456`, or
    /// `tagguard's record of its push (from run …) says 0123456`: for messages.
    pub fn says(&self) -> String {
        match (self.from, &self.ci_run) {
            (EvidenceFrom::Label, _) => {
                format!("its {REVISION_LABEL} label says {}", self.commit)
            }
            (EvidenceFrom::Record, Some(run)) => format!(
                "tagguard's record of its push (in {run}) says {}",
                self.commit
            ),
            (EvidenceFrom::Record, None) => {
                format!("tagguard's record of its push says {}", self.commit)
            }
        }
    }
}

/// An image in a repository, and what says which commit it was built from.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest the reference names (an index for a multi-platform image).
    pub manifest: Manifest,
    /// `None`: neither a revision label nor a record of tagguard's names a commit.
    pub evidence: Option<Evidence>,
}

/// Reads the image `reference` (a tag or digest) names in `repo`, and the evidence of its
/// commit: `None` when there is no such image. An index leads to one platform manifest, and
/// that to its config; an image without a revision label costs one more round trip, for
/// tagguard's records of it.
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
                let config = read_config(client, repo, &digest)
                    .await
                    .map_err(|e| e.to_string())?;
                let evidence = match labels(&config)?.revision {
                    Some(commit) => Some(Evidence {
                        commit,
                        from: EvidenceFrom::Label,
                        ci_run: None,
                    }),
                    None => recorded(client, repo, &top.digest).await?,
                };
                return Ok(Some(Built {
                    manifest: top,
                    evidence,
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

/// The commit tagguard's records of `digest` name: the earliest record's (the push that wrote
/// the image first; a later one only ever adopts a build of the same commit).
async fn recorded(
    client: &RegistryClient,
    repo: &str,
    digest: &Digest,
) -> Result<Option<Evidence>, String> {
    let mut records = record::of_image(client, repo, digest).await?;
    records.retain(|r| r.commit.is_some());
    records.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(records.into_iter().next().map(|r| Evidence {
        commit: r.commit.unwrap_or_default(),
        from: EvidenceFrom::Record,
        ci_run: r.ci_run,
    }))
}

/// Whether two names of a commit agree — a revision label or a record and the build's commit,
/// or a label and the abbreviated commit in a tag: both are 7 to 64 hex digits (any case), and
/// the shorter is a prefix of the longer. `v1.2.3`, `main` and a 6-digit abbreviation name no
/// commit.
pub fn names_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    let name = |s: &str| (7..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !name(a) || !name(b) {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long[..short.len()].eq_ignore_ascii_case(short)
}

/// Image configs are small (a few KiB; the largest seen, with long histories, some hundred KiB):
/// a larger blob is not one.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Why an image config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the image config {digest} {detail}")]
    Content { digest: Digest, detail: String },
}

/// Reads the image config `digest` of `repo`: at most [`MAX_CONFIG_BYTES`], checked against its
/// digest.
pub async fn read_config(
    client: &RegistryClient,
    repo: &str,
    digest: &Digest,
) -> Result<Vec<u8>, ConfigError> {
    let content = |detail: String| ConfigError::Content {
        digest: digest.clone(),
        detail,
    };
    let mut response = client.get_blob(repo, digest).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| content(format!("could not be read: {e}")))?
    {
        if bytes.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Err(content(format!(
                "is larger than {MAX_CONFIG_BYTES} bytes: not an image config"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    match digest.recompute(&bytes) {
        Some(actual) if actual != *digest => Err(content(format!("read back as {actual}"))),
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
    fn two_names_of_a_commit_agree_when_the_shorter_is_a_prefix_of_seven_hex_digits_or_more() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert!(names_commit(commit, commit));
        assert!(names_commit("0123456", commit));
        assert!(names_commit(commit, "0123456"), "either side may be short");
        assert!(names_commit(" 0123456789ABCDEF ", commit));
        assert!(!names_commit("012345", commit));
        assert!(!names_commit("1123456", commit));
        assert!(!names_commit("v1.2.3", commit));
        assert!(!names_commit("0123456-dirty", commit), "hex only");
        assert!(!names_commit(&"0".repeat(65), &"0".repeat(40)));
    }

    #[test]
    fn the_labels_or_none() {
        let c = br#"{"config":{"Labels":{"org.opencontainers.image.revision":"abc1234","org.opencontainers.image.version":" "}}}"#;
        let l = labels(c).unwrap();
        assert_eq!(l.revision.as_deref(), Some("abc1234"));
        assert_eq!(l.version, None);
        assert_eq!(labels(br#"{"config":{}}"#).unwrap(), Labels::default());
        assert_eq!(
            labels(br#"{"config":{"Labels":null}}"#).unwrap(),
            Labels::default()
        );
        assert!(labels(b"not json").is_err());
    }
}
