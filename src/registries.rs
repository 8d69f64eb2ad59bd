//! The registries of one run: one client per host (its connection pool, one token per scope),
//! made on first use and shared by every stage that talks to a registry.

// Registry errors say what they are about; one is built per failed run, not worth boxing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::docker::DockerLimits;
use crate::registry::{CredentialConfig, RegistryClient, RegistryError, TransportConfig};

/// How to reach registries: credentials and transport.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    pub credentials: CredentialConfig,
    pub transport: TransportConfig,
}

pub struct Registries {
    config: RegistryConfig,
    clients: Mutex<BTreeMap<String, Arc<RegistryClient>>>,
}

impl Registries {
    pub fn new(config: RegistryConfig) -> Registries {
        Registries {
            config,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    /// The client for `host`, made once per run.
    pub fn client(&self, host: &str) -> Result<Arc<RegistryClient>, RegistryError> {
        let mut clients = self.clients.lock().expect("registry clients lock");
        if let Some(c) = clients.get(host) {
            return Ok(c.clone());
        }
        let c = Arc::new(RegistryClient::new(
            host,
            &self.config.credentials,
            &self.config.transport,
        )?);
        clients.insert(host.to_owned(), c.clone());
        Ok(c)
    }

    /// Requests in flight at once.
    pub fn concurrency(&self) -> usize {
        self.config.transport.concurrency.max(1)
    }

    /// How long `docker` commands may stay silent, from the same limits.
    pub fn docker_limits(&self) -> DockerLimits {
        DockerLimits::from_transport(&self.config.transport)
    }

    /// How often a transiently failed request is tried again (`--retries`).
    pub fn retries(&self) -> u32 {
        self.config.transport.retry.max_retries
    }
}
