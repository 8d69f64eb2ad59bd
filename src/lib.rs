//! tagguard: compute container image tags from a policy and the build's context, check them
//! against the registry, and refuse to overwrite immutable tags.
//!
//! The library never prints; the `tagguard` binary renders what it returns.
