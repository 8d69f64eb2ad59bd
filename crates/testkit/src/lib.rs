//! tagguard's test harness, shared by the main crate's integration tests (`tests/it`) and the
//! registry client's own (`crates/registry/tests`): real parts wherever a real part can do it.
//!
//! - `registry`: a real registry process (CNCF distribution) on a free loopback port, plain,
//!   Basic, TLS or token auth, with images seeded by skopeo.
//! - `token_server`: the token endpoint of a token-auth registry (and its signing key).
//! - `fault_proxy`: a proxy in front of a registry that turns chosen requests into faults
//!   (statuses, resets, stalls, truncations, redirects) and records every attempt with its time.
//! - `http`: a stub HTTP server, for what a real registry cannot do (other registries' quirks,
//!   refusals, web APIs).
//! - `persona`: other registries' delete and tag-list behaviour (Quay, GitLab, Harbor, ACR) as
//!   fault-proxy answers in front of the real registry, with the source for each.
//! - `client`: the registry client as the tests build it (credentials from exactly the variables
//!   given, a transport that gives up fast): the one part that names the client's types.

pub mod client;
pub mod fault_proxy;
pub mod http;
pub mod persona;
pub mod registry;
pub mod token_server;
