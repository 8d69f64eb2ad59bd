//! Credential helpers: `docker-credential-<name> get`, the server URL on stdin, a JSON answer on
//! stdout. Run under a deadline and killed after it; their output is never echoed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::credentials::{Credential, CredentialError, CredentialSecret, server_url};
use super::process::{RunError, Watch, run_watched};
use crate::secret::Secret;

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// `docker-credential-<helper> get` with the server URL on stdin, killed if it has not answered
/// within `deadline`. `Ok(None)` when it has no credentials for the host.
pub(super) fn run_helper(
    helper: &str,
    host: &str,
    config: &Path,
    env: &BTreeMap<String, String>,
    deadline: Duration,
) -> Result<Option<Credential>, CredentialError> {
    let program = format!("docker-credential-{helper}");
    log::debug!("asking {program} for credentials for {host}");
    let config_s = config.display().to_string();
    let mut cmd = Command::new(&program);
    cmd.arg("get").env_clear().envs(env);
    let started = Instant::now();
    let output = run_watched(
        &mut cmd,
        server_url(host).as_bytes(),
        Watch {
            idle: deadline,
            total: Some(deadline),
            progress: |_| true,
        },
    )
    .map_err(|e| match e {
        RunError::Spawn(source) => CredentialError::HelperSpawn {
            helper: helper.to_owned(),
            config: config_s.clone(),
            host: host.to_owned(),
            source,
        },
        RunError::Silent(deadline) | RunError::Overdue(deadline) => {
            CredentialError::HelperTimeout {
                helper: helper.to_owned(),
                config: config_s.clone(),
                host: host.to_owned(),
                deadline,
            }
        }
    })?;
    log::debug!("{program} answered in {:?}", started.elapsed());
    // The helper's output is never echoed: it may be a secret.
    let stdout = Secret::new(String::from_utf8_lossy(&output.stdout).into_owned());
    if !output.status.success() {
        if stdout.expose().contains("credentials not found") {
            return Ok(None);
        }
        return Err(CredentialError::HelperFailed {
            helper: helper.to_owned(),
            config: config_s,
            host: host.to_owned(),
            status: output.status.to_string(),
        });
    }
    let answer: HelperAnswer =
        serde_json::from_str(stdout.expose()).map_err(|_| CredentialError::HelperOutput {
            helper: helper.to_owned(),
            config: config_s,
            host: host.to_owned(),
        })?;
    let secret = Secret::new(answer.secret);
    Ok(Some(if answer.username == "<token>" {
        Credential {
            username: String::new(),
            secret: CredentialSecret::IdentityToken(secret),
        }
    } else {
        Credential::password(answer.username, secret)
    }))
}
