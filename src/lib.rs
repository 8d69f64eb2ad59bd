//! tagguard: compute container image tags from a policy and the build's context, check them
//! against the registry, and refuse to overwrite immutable tags.
//!
//! The data flows one way, one stage per module:
//!
//! [`context`] (git, CI, clock) → [`policy`] + [`tags`] (pure) → [`source`] (the image to
//! push) → [`plan`] (observe the registry, then decide: pure) → [`apply`] (copy content, write
//! tags in phases, read back) → [`report`] (one report per run; the exit code comes from it).
//!
//! [`check`] and [`push`] are the commands' compositions of these stages; [`registries`] holds
//! the run's registry clients; [`revision`] reads which commit an image in a registry was built
//! from; [`hook`] is the pre-push hook. The library never prints; the
//! `tagguard` binary renders what it returns.

pub mod apply;
pub mod audit;
pub mod check;
pub mod ci;
pub mod context;
pub mod docker;
pub mod finding;
pub mod git;
pub mod hook;
pub mod plan;
pub mod policy;
pub mod prune;
pub mod push;
pub mod registries;
pub mod release;
pub mod report;
pub mod revision;
pub mod sanitize;
pub mod source;
mod suggest;
pub mod tags;
pub mod template;
