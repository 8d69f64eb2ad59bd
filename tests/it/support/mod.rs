//! Test builders: real git repositories, real registry processes, the real binary. The registry
//! process, the fault proxy, the token server and the stub HTTP server live in the
//! `tagguard-testkit` crate (the registry client's tests use them too), re-exported here under
//! their old paths.
#![allow(dead_code)]

pub mod act;
pub mod client;
pub mod cmd;
pub mod git;
pub mod github_packages;
pub mod gitlab_job;
pub mod labeled_image;
pub mod release_mirror;
pub mod remote;

pub use tagguard_testkit::{fault_proxy, http, persona, registry, token_server};
