//! tagguard's registry client: talking to container registries over the OCI Distribution API.
//! It knows nothing of policies, plans or findings; tagguard's pipeline asks it to look up,
//! read, write, copy, list, delete and record, and reads its typed errors (`RegistryError`,
//! `WriteFate`). The only network I/O of tagguard's registry work (and it runs credential
//! helpers' processes, bounded by `process`).
//!
//! - `client` holds one registry's connection pool and auth; its operations live by concern in
//!   `manifests`, `tags`, `blobs` and `delete`; `copy` copies blobs into a repository (a mount,
//!   or a streamed copy from another registry or from files).
//! - `engine` sends every request — a streamed body is one of its request types — and
//!   `transmit` is the one place a request leaves, to the registry and to its token endpoint
//!   (`token`), under the deadline of silence of `silence`; `classify` names what went wrong
//!   below HTTP; `limiter` decides how many requests go to the registry at once.
//! - `retry` is the one retry policy: what is transient (one list of statuses) and how often a
//!   request, an upload, a download or a tag write goes again.
//! - `error` is what can go wrong, with diagnostic codes; `refusal` recognises each registry's way
//!   of refusing a tag write.
//! - `credentials` finds credentials (`helper` runs credential helpers, `process` bounds helper
//!   processes); `auth` turns them into `Authorization` headers, a cache of tokens per scope that
//!   the engine fills.
//! - `transport` is how to reach a host (TLS, plain HTTP for loopback and insecure hosts, timeouts).
//! - `web` is a client for the JSON web APIs beside registries (GitHub's, GitLab's): its requests
//!   leave through the engine's `transmit`, with the same retry policy, deadlines and bounds.

// Errors carry the request, the credential source and the scope so they can say what they are
// about; they are built once per failed run, so their size is not worth boxing for.
#![allow(clippy::result_large_err)]

pub mod auth;
mod blobs;
pub mod challenge;
mod classify;
pub mod client;
pub mod copy;
pub mod credentials;
mod delete;
pub mod digest;
mod engine;
pub mod error;
mod helper;
pub mod limiter;
pub mod manifest;
mod manifests;
pub mod process;
pub mod reference;
pub mod refusal;
pub mod retry;
pub mod secret;
mod silence;
mod tags;
pub mod token;
pub mod transport;
mod web;

pub use client::{BlobStream, Manifest, ManifestHead, Mount, RegistryClient};
pub use credentials::{CredentialConfig, CredentialSource};
pub use delete::Deleted;
pub use digest::Digest;
pub use error::{RegistryError, WriteFate};
pub use reference::Reference;
pub use transport::TransportConfig;
pub use web::{WebAnswer, WebClient, WebError, WebToken, encode_segment};
