//! The registry client as the tests build it: credentials from exactly the variables given
//! (nothing of the test process's environment leaks in), and a transport that gives up fast, so
//! a fault costs milliseconds. The one part of the harness that names the client's types: the
//! registry process and the fault proxy know nothing of tagguard.

use std::time::Duration;

use tagguard_registry::{CredentialConfig, RetryPolicy, TransportConfig};

/// Per attempt in [`fast_transport`]; a stall costs this much.
pub const TIMEOUT: Duration = Duration::from_millis(600);
/// The longest `Retry-After` [`fast_transport`] honours (backoff alone stays under 20 ms).
pub const RETRY_AFTER_CAP: Duration = Duration::from_millis(300);
/// How often [`fast_transport`] tries a request again.
pub const RETRIES: u32 = 3;

/// The one credentials builder: the variables in `env`, and nothing else.
pub fn credentials(env: &[(&str, &str)]) -> CredentialConfig {
    CredentialConfig {
        explicit: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub fn fast_transport() -> TransportConfig {
    TransportConfig {
        timeout: TIMEOUT,
        connect_timeout: TIMEOUT,
        retry: RetryPolicy {
            max_retries: RETRIES,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: RETRY_AFTER_CAP,
        },
        ..TransportConfig::default()
    }
}
