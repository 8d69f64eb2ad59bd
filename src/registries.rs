//! The registries of one run: one client per host (its connection pool, one token per scope),
//! made on first use and shared by every stage that talks to a registry.

// Registry errors say what they are about; one is built per failed run, not worth boxing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::docker::DockerLimits;
use tagguard_registry::RetryPolicy;
use tagguard_registry::{CredentialConfig, RegistryClient, RegistryError, TransportConfig};

/// How to reach registries: credentials and transport.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    pub credentials: CredentialConfig,
    pub transport: TransportConfig,
    /// The longest a whole `docker push` may take; `None`: [`crate::docker::PUSH_DEADLINE`].
    pub docker_push_deadline: Option<std::time::Duration>,
}

pub struct Registries {
    config: RegistryConfig,
    clients: Mutex<BTreeMap<String, Arc<RegistryClient>>>,
    /// Hosts whose client could not be made (credentials that could not be read: a helper
    /// that failed or never answered), with the first error as it was said. A helper is
    /// started at most once per host and run, so its deadline bounds the run's wait for it.
    failed: Mutex<BTreeMap<String, String>>,
}

impl Registries {
    pub fn new(config: RegistryConfig) -> Registries {
        Registries {
            config,
            clients: Mutex::new(BTreeMap::new()),
            failed: Mutex::new(BTreeMap::new()),
        }
    }

    /// The client for `host`, made once per run.
    pub fn client(&self, host: &str) -> Result<Arc<RegistryClient>, RegistryError> {
        let mut clients = self.clients.lock().expect("registry clients lock");
        if let Some(c) = clients.get(host) {
            return Ok(c.clone());
        }
        let mut failed = self.failed.lock().expect("registry failures lock");
        if let Some(first) = failed.get(host) {
            return Err(RegistryError::ClientBefore {
                host: host.to_owned(),
                first: first.clone(),
            });
        }
        match RegistryClient::new(host, &self.config.credentials, &self.config.transport) {
            Ok(c) => {
                let c = Arc::new(c);
                clients.insert(host.to_owned(), c.clone());
                Ok(c)
            }
            Err(e) => {
                failed.insert(host.to_owned(), e.to_string());
                Err(e)
            }
        }
    }

    /// Requests in flight at once.
    pub fn concurrency(&self) -> usize {
        self.config.transport.concurrency.max(1)
    }

    /// How long `docker` commands may stay silent, from the same limits.
    pub fn docker_limits(&self) -> DockerLimits {
        let limits = DockerLimits::from_transport(&self.config.transport);
        DockerLimits {
            push_total: self
                .config
                .docker_push_deadline
                .unwrap_or(limits.push_total),
            ..limits
        }
    }

    /// When a failed request or write is tried again (`--retries`).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.config.transport.retry
    }
}
