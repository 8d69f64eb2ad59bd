//! Reading an OCI image layout directory (what `buildx --output type=oci`, kaniko, buildah and
//! skopeo write): `oci-layout`, `index.json` and `blobs/<algorithm>/<hex>`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use tagguard_registry::Digest;
use tagguard_registry::is_index;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayoutError {
    #[diagnostic(
        code(tagguard::layout::not_a_layout),
        help("point oci: at the directory buildx `type=oci,tar=false`, skopeo or kaniko wrote")
    )]
    #[error("{dir}: not an OCI image layout (no readable oci-layout and index.json): {source}")]
    NotALayout { dir: String, source: std::io::Error },
    #[diagnostic(code(tagguard::layout::index))]
    #[error("{dir}/index.json: {detail}")]
    Index { dir: String, detail: String },
    #[diagnostic(code(tagguard::layout::no_such_ref))]
    #[error("{dir}: no manifest named {name:?} in index.json (names: {known})")]
    NoSuchRef {
        dir: String,
        name: String,
        known: String,
    },
    #[diagnostic(code(tagguard::layout::ambiguous))]
    #[error(
        "{dir}: index.json lists {count} manifests; name one with oci:{dir}:REF (names: {known})"
    )]
    Ambiguous {
        dir: String,
        count: usize,
        known: String,
    },
    #[diagnostic(code(tagguard::layout::blob))]
    #[error("{path}: {source}")]
    Blob {
        path: String,
        source: std::io::Error,
    },
    #[diagnostic(code(tagguard::layout::corrupt))]
    #[error("{path}: content does not match its digest {digest}")]
    Corrupt { path: String, digest: Digest },
}

/// A manifest picked from `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub digest: Digest,
    pub media_type: String,
}

#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

impl Layout {
    pub fn open(dir: &Path) -> Result<Layout, LayoutError> {
        std::fs::metadata(dir.join("oci-layout"))
            .and_then(|_| std::fs::metadata(dir.join("index.json")))
            .map_err(|source| LayoutError::NotALayout {
                dir: dir.display().to_string(),
                source,
            })?;
        Ok(Layout {
            dir: dir.to_owned(),
        })
    }

    fn shown(&self) -> String {
        self.dir.display().to_string()
    }

    /// The manifest named `reference`, or the only one when no name is given.
    pub fn select(&self, reference: Option<&str>) -> Result<Entry, LayoutError> {
        let index_err = |detail: String| LayoutError::Index {
            dir: self.shown(),
            detail,
        };
        let text =
            std::fs::read(self.dir.join("index.json")).map_err(|e| index_err(e.to_string()))?;
        let index: Index = serde_json::from_slice(&text).map_err(|e| index_err(e.to_string()))?;
        let names = || {
            let names: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
                .collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        let entry = match reference {
            Some(name) => index
                .manifests
                .iter()
                .find(|m| m.annotations.get(REF_NAME).is_some_and(|n| n == name))
                .ok_or_else(|| LayoutError::NoSuchRef {
                    dir: self.shown(),
                    name: name.to_owned(),
                    known: names(),
                })?,
            None => match index.manifests.as_slice() {
                [only] => only,
                [] => return Err(index_err("lists no manifests".into())),
                many => {
                    return Err(LayoutError::Ambiguous {
                        dir: self.shown(),
                        count: many.len(),
                        known: names(),
                    });
                }
            },
        };
        let digest: Digest = entry
            .digest
            .parse()
            .map_err(|e| index_err(format!("{e}")))?;
        let bytes = self.read_blob(&digest)?;
        let media_type = entry
            .media_type
            .clone()
            .or_else(|| media_type_of(&bytes))
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned());
        Ok(Entry { digest, media_type })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// A whole blob, checked against its digest (for manifests and configs; layers are streamed).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|source| LayoutError::Blob {
            path: path.display().to_string(),
            source,
        })?;
        if digest.recompute(&bytes).is_some_and(|d| &d != digest) {
            return Err(LayoutError::Corrupt {
                path: path.display().to_string(),
                digest: digest.clone(),
            });
        }
        Ok(bytes)
    }
}

/// The `mediaType` a manifest document declares.
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let typed: Typed = serde_json::from_slice(bytes).ok()?;
    typed.media_type.or_else(|| {
        typed
            .manifests
            .map(|_| tagguard_registry::OCI_INDEX.to_owned())
    })
}

/// Whether this entry is a multi-platform index.
impl Entry {
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }
}
