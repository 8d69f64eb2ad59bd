//! Asks the registry what stands at a release's immutable image tags: absent, or an image
//! and the commit its config's revision label names. The only network I/O of the hook.

use crate::registries::Registries;
use crate::registry::{Digest, Reference, RegistryClient};

use super::image_revision::{self, Next};
use super::pre_push::Lookup;

/// Looks up each `image:tag` reference. A failure is a [`Lookup::Failed`] for that reference,
/// never an error of the whole hook: what it means is the policy's call.
pub async fn lookup_all(references: &[String], registries: &Registries) -> Vec<Lookup> {
    let mut out = Vec::with_capacity(references.len());
    for text in references {
        let reference: Reference = match text.parse() {
            Ok(r) => r,
            Err(e) => {
                out.push(Lookup::Failed {
                    error: format!("invalid reference: {e}"),
                });
                continue;
            }
        };
        out.push(match registries.client(&reference.registry) {
            Ok(client) => lookup(&client, &reference)
                .await
                .unwrap_or_else(|error| Lookup::Failed { error }),
            Err(error) => Lookup::Failed {
                error: error.to_string(),
            },
        });
    }
    out
}

async fn lookup(client: &RegistryClient, reference: &Reference) -> Result<Lookup, String> {
    let repo = &reference.repository;
    let Some(mut manifest) = client
        .get_manifest(repo, &reference.manifest_ref())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(Lookup::Absent);
    };
    // An index points at a platform manifest; one more hop reaches an image manifest.
    for _ in 0..2 {
        match image_revision::next(&manifest.bytes)? {
            Next::Config(digest) => {
                let digest: Digest = digest
                    .parse()
                    .map_err(|e| format!("config digest {digest:?}: {e}"))?;
                let config = read_config(client, repo, &digest).await?;
                return Ok(Lookup::Found {
                    revision: image_revision::revision(&config)?,
                });
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
