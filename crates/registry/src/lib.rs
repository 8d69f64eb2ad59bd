//! tagguard's registry client: talking to container registries over the OCI Distribution API.
//! It knows nothing of policies, plans or findings: tagguard's pipeline asks it to look up, read,
//! write, copy, list, delete and record, and reads its typed errors. It is the only network I/O
//! of tagguard's registry work, and it runs credential helpers' processes, each bounded.
//!
//! # The API
//!
//! - **A client per registry host**: [`RegistryClient::new`] takes the host, a
//!   [`CredentialConfig`] (where credentials come from; [`CredentialSource`] says which one was
//!   used, never the secret, which is a [`Secret`]) and a [`TransportConfig`] (TLS, timeouts,
//!   requests in flight, and the [`RetryPolicy`] knobs the CLI sets).
//! - **Look up and read**: `head_manifest` ([`ManifestHead`]), `resolve`, `get_manifest`
//!   ([`Manifest`]), `blob_exists`, `get_blob` ([`BlobStream`]), `referrers`; **list**:
//!   `list_tags`, `tag_pages`, `tags_on_one_page`.
//! - **Write**: `put_manifest` (a tag write; [`RetryPolicy::rewrite_tag`] says when a write whose
//!   answer was lost is sent again), `mount_blob` ([`Mount`]), `start_upload`, `upload_chunk`,
//!   `finish_upload`; **copy** blobs into a repository with [`copy_blobs`] (a mount, or a
//!   streamed copy from another registry or from files: [`CopyTarget`], [`BlobOrigin`],
//!   [`CopyError`]); **delete**: `delete_manifest` ([`Deleted`]). A record is a manifest put with
//!   these.
//! - **Names and contents**: [`Reference`] (with [`ReferenceError`], [`TagError`] and
//!   [`tag_problem`], the one rule of what a tag may be), [`Digest`] ([`DigestError`]),
//!   [`parse_manifest`] into [`ManifestParts`] of [`Descriptor`]s, [`is_index`], [`OCI_INDEX`].
//! - **Errors**: [`RegistryError`] names the registry, the request ([`RequestId`]) and the
//!   credential source, carries a diagnostic code and a help line, and says with [`WriteFate`]
//!   whether a failed write may have been applied. [`CredentialError`] is why credentials could
//!   not be found.
//! - **Bounded processes**: [`run_watched`] runs a process under a [`Watch`] (a deadline of
//!   silence), as credential helpers run; tagguard's docker backend and liveness commands use it
//!   too ([`Ran`], [`RunError`]).
//!
//! # Inside
//!
//! - `client` holds one registry's connection pool and auth; its operations live by concern in
//!   `manifests`, `tags`, `blobs` and `delete`; `copy` copies blobs into a repository.
//! - `engine` sends every request — a streamed body, a token request and a web-API request are
//!   request types of its own (`engine::outgoing`) — and `transmit` is the one place a request
//!   leaves, under the deadline of silence
//!   of `silence`; `classify` names what went wrong below HTTP; `limiter` decides how many
//!   requests go to the registry at once.
//! - `retry` is the one retry policy: what is transient (one list of statuses) and how often a
//!   request, a token request, an upload, a download or a tag write goes again.
//! - `error` is what can go wrong, with diagnostic codes; `refusal` recognises each registry's way
//!   of refusing a tag write.
//! - `credentials` finds credentials (`helper` runs credential helpers, `process` bounds helper
//!   processes); `auth` turns them into `Authorization` headers, a cache of tokens per scope that
//!   the engine fills through `token` (`challenge` parses `WWW-Authenticate`).
//! - `transport` is how to reach a host (TLS, plain HTTP for loopback and insecure hosts, timeouts).
//! - `web` is a client for the JSON web APIs beside registries (GitHub's, GitLab's): its requests
//!   are a request type of the engine, sent by an engine for the API's host (its limiter, the
//!   same retry policy, deadlines and bounds).

// Errors carry the request, the credential source and the scope so they can say what they are
// about; they are built once per failed run, so their size is not worth boxing for.
#![allow(clippy::result_large_err)]
// Every type the API hands out can be named from the crate root.
#![warn(unnameable_types)]

mod auth;
mod blobs;
mod challenge;
mod classify;
mod client;
mod copy;
mod credentials;
mod delete;
mod digest;
mod engine;
mod error;
mod helper;
mod limiter;
mod manifest;
mod manifests;
mod process;
mod reference;
mod refusal;
mod retry;
mod secret;
mod silence;
mod tags;
mod token;
mod transport;
mod web;

pub use blobs::{BlobStream, Mount};
pub use client::RegistryClient;
pub use copy::{BlobOrigin, CopyError, CopyTarget, copy_blobs};
pub use credentials::{ACR_TOKEN_USERNAME, CredentialConfig, CredentialError, CredentialSource};
pub use delete::Deleted;
pub use digest::{Digest, DigestError};
pub use error::{RegistryError, RequestId, WriteFate};
pub use manifest::{
    Descriptor, OCI_INDEX, Parts as ManifestParts, is_index, parse as parse_manifest,
};
pub use manifests::{Manifest, ManifestHead};
pub use process::{Ran, RunError, Watch, run_watched};
pub use reference::{Reference, ReferenceError, TagError, tag_problem};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use transport::TransportConfig;
pub use web::{WebAnswer, WebClient, WebError, WebToken, encode_segment};

/// The parsers of what registries send, for the fuzz targets (`fuzz/`) alone: not part of the
/// API, and absent unless the `fuzzing` feature is on.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::auth::Scheme;
    pub use crate::challenge::{Challenge, parse as parse_challenges};
    pub use crate::error::{ErrorEntry, describe, error_entries};
    pub use crate::reference::validate_tag;
    pub use crate::refusal::{recognise, recognise_text};
    pub use crate::retry::parse_retry_after;
    pub use crate::tags::{next_link_in, parse_tag_page};
    pub use crate::token::{MAX_TOKEN_LIFETIME, parse_token_response, token_error_message};
}
