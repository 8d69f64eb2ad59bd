//! Talking to container registries over the OCI Distribution API. The only part of the library
//! that does network I/O (and runs credential helpers).

// Errors carry the request, the credential source and the scope so they can say what they are
// about; they are built once per failed run, so their size is not worth boxing for.
#![allow(clippy::result_large_err)]

pub mod auth;
mod blobs;
pub mod challenge;
mod classify;
pub mod client;
pub mod credentials;
pub mod digest;
mod engine;
pub mod error;
mod helper;
pub mod manifest;
mod manifests;
pub(crate) mod process;
pub mod reference;
pub mod refusal;
pub mod retry;
mod silence;
mod tags;
pub mod token;
pub mod transport;

pub use client::{BlobStream, Manifest, ManifestHead, Mount, RegistryClient};
pub use credentials::{CredentialConfig, CredentialSource};
pub use digest::Digest;
pub use error::{RegistryError, WriteFate};
pub use reference::Reference;
pub use transport::TransportConfig;
