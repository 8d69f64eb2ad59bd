//! What a manifest refers to: the blobs and child manifests that must exist in a repository
//! before the manifest can be put there.

use serde::Deserialize;

use super::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor: what, how big.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub digest: Digest,
    pub size: u64,
    pub media_type: Option<String>,
}

/// The references out of one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parts {
    /// Config and layers (image manifest), in order.
    pub blobs: Vec<Descriptor>,
    /// Child manifests (index / manifest list), in order.
    pub manifests: Vec<Descriptor>,
    /// The config blob's digest (image manifest only).
    pub config: Option<Digest>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
}

/// Whether a media type (from Content-Type or the document) is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Parses a manifest or index. Unknown fields are ignored; every digest must be valid and every
/// size non-negative.
pub fn parse(bytes: &[u8]) -> Result<Parts, String> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    let convert = |d: RawDescriptor| -> Result<Descriptor, String> {
        let digest: Digest = d.digest.parse().map_err(|e| format!("descriptor: {e}"))?;
        let size =
            u64::try_from(d.size).map_err(|_| format!("descriptor {digest}: negative size"))?;
        Ok(Descriptor {
            digest,
            size,
            media_type: d.media_type,
        })
    };
    let config = raw.config.map(convert).transpose()?;
    let mut parts = Parts {
        config: config.as_ref().map(|c| c.digest.clone()),
        ..Parts::default()
    };
    parts.blobs.extend(config);
    for layer in raw.layers {
        parts.blobs.push(convert(layer)?);
    }
    for child in raw.manifests {
        parts.manifests.push(convert(child)?);
    }
    // Whether by its mediaType or by listing manifests, an index has no config or layers.
    let index = raw.media_type.as_deref().is_some_and(is_index) || !parts.manifests.is_empty();
    if index && !parts.blobs.is_empty() {
        return Err("an index must not have a config or layers".into());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn image_manifest() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{D}","size":2,"mediaType":"application/vnd.oci.image.config.v1+json"}},"layers":[{{"digest":"{D}","size":5}}]}}"#
        );
        let parts = parse(json.as_bytes()).unwrap();
        assert_eq!(parts.blobs.len(), 2);
        assert_eq!(parts.config.unwrap().to_string(), D);
        assert!(parts.manifests.is_empty());
    }

    #[test]
    fn index() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"digest":"{D}","size":9}}]}}"#
        );
        let parts = parse(json.as_bytes()).unwrap();
        assert_eq!(parts.manifests.len(), 1);
        assert!(parts.blobs.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"{").is_err());
        assert!(parse(br#"{"layers":[{"digest":"md5:x","size":1}]}"#).is_err());
        assert!(
            parse(format!(r#"{{"layers":[{{"digest":"{D}","size":-1}}]}}"#).as_bytes()).is_err()
        );
    }
}
