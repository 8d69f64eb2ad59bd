//! tagguard: compute container image tags from a policy and the build's context, check them
//! against the registry, and refuse to overwrite immutable tags.
//!
//! The data flows one way: [`context`] (git, CI, clock) → [`policy`] + [`tags`] (pure) →
//! registry (observe) → plan (decide) → apply (write). The library never prints; the
//! `tagguard` binary renders what it returns.

pub mod audit;
pub mod check;
pub mod ci;
pub mod context;
pub mod decision;
pub mod docker;
pub mod floating;
pub mod git;
pub mod hook;
pub mod layout;
pub mod policy;
pub mod push;
pub mod registry;
pub mod release;
pub mod sanitize;
pub mod secret;
pub mod source;
mod suggest;
pub mod tags;
pub mod template;
