//! The harness (`tagguard-testkit`), under the same paths as in the main crate's `tests/it`.

pub use tagguard_testkit::{client, fault_proxy, http, registry};
