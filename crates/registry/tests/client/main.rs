//! The registry client's own integration tests, one binary with a module per area: against a
//! real registry process, behind the fault proxy, and against stub servers for what a real
//! registry cannot do. Tests that run the `tagguard` binary live in the main crate's `tests/it`.

mod faults_auth;
mod faults_guard;
mod faults_reads;
mod faults_writes;
mod registry;
mod rig;
mod support;
