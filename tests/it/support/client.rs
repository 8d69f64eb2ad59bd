//! The configuration of a `check`/`push` run through the library, and (re-exported from
//! `tagguard-testkit`) the registry client as the tests build it.

use std::time::Duration;

use tagguard::check::CheckConfig;
use tagguard_registry::TransportConfig;
pub use tagguard_testkit::client::*;

use crate::support::registry::Registry;

/// The configuration of a `check`/`push` run through the library: credentials from exactly
/// `env`, retries fast, and the test CA trusted when the registry has one.
pub fn check_config(registry: Option<&Registry>, env: &[(&str, &str)]) -> CheckConfig {
    let mut transport = TransportConfig::default();
    transport.retry.base_delay = Duration::from_millis(10);
    if let Some(r) = registry
        && let Some(ca) = &r.ca
    {
        transport.ca_files.insert(r.host.clone(), ca.clone());
    }
    CheckConfig {
        credentials: credentials(env),
        transport,
        docker_push_deadline: None,
    }
}
