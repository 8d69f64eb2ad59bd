//! Asks the registry what stands at a release's immutable image tags: absent, or an image and
//! what says which commit it was built from ([`revision::built`], as the planner asks). The
//! only network I/O of the hook.

use crate::registries::Registries;
use crate::revision;
use tagguard_registry::{Reference, RegistryClient};

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
    let found = revision::built(client, &reference.repository, &reference.manifest_ref()).await?;
    Ok(match found {
        None => Lookup::Absent,
        Some(built) => Lookup::Found {
            revision: built.evidence,
        },
    })
}
