//! Where a registry's credentials come from, in order: explicit, `TAGGUARD_USERNAME`/`_PASSWORD`,
//! `DOCKER_AUTH_CONFIG`, Docker's `config.json` (credential helpers included), podman's auth
//! file, GitLab CI's `CI_REGISTRY_*`. The environment is a map handed in, never `std::env`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use super::helper::run_helper;
use super::reference::DOCKER_HUB;
use crate::secret::Secret;

/// Azure ACR's username for a refresh token (`az acr login --expose-token`).
pub const ACR_TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// The key Docker files Docker Hub credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What the registry is asked with.
#[derive(Clone, Debug)]
pub enum CredentialSecret {
    Password(Secret),
    /// An OAuth2 refresh token, exchanged at the token endpoint (`grant_type=refresh_token`).
    IdentityToken(Secret),
}

#[derive(Clone, Debug)]
pub struct Credential {
    pub username: String,
    pub secret: CredentialSecret,
}

impl Credential {
    pub fn password(username: impl Into<String>, password: Secret) -> Self {
        let username = username.into();
        // ACR hands out refresh tokens to be used as a password with the all-zero username.
        let secret = if username == ACR_TOKEN_USERNAME {
            CredentialSecret::IdentityToken(password)
        } else {
            CredentialSecret::Password(password)
        };
        Credential { username, secret }
    }
}

/// Which source credentials came from: safe to print, never holds the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `--username` with `--password-stdin`.
    Explicit,
    /// `TAGGUARD_USERNAME` / `TAGGUARD_PASSWORD`.
    Environment,
    /// The `DOCKER_AUTH_CONFIG` variable, under this key.
    DockerAuthConfig { key: String },
    /// `auths` of a Docker config file.
    DockerConfig { path: PathBuf, key: String },
    /// `docker-credential-<helper>` named by `credHelpers` or `credsStore` of this config file.
    CredentialHelper { helper: String, config: PathBuf },
    /// podman's `auth.json`.
    PodmanAuthFile { path: PathBuf, key: String },
    /// `CI_REGISTRY_USER` / `CI_REGISTRY_PASSWORD` (GitLab CI).
    GitlabCi,
    /// No credentials were found.
    Anonymous,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Explicit => f.write_str("--username/--password-stdin"),
            CredentialSource::Environment => f.write_str("TAGGUARD_USERNAME/TAGGUARD_PASSWORD"),
            CredentialSource::DockerAuthConfig { key } => {
                write!(f, "DOCKER_AUTH_CONFIG auths[{key:?}]")
            }
            CredentialSource::DockerConfig { path, key } => {
                write!(f, "{} auths[{key:?}]", path.display())
            }
            CredentialSource::CredentialHelper { helper, config } => {
                write!(f, "docker-credential-{helper} (from {})", config.display())
            }
            CredentialSource::PodmanAuthFile { path, key } => {
                write!(f, "{} auths[{key:?}]", path.display())
            }
            CredentialSource::GitlabCi => f.write_str("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
            CredentialSource::Anonymous => f.write_str("anonymous (no credentials found)"),
        }
    }
}

/// Credentials for one registry and where they came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub credential: Option<Credential>,
    pub source: CredentialSource,
}

/// Inputs to credential lookup.
#[derive(Clone, Default)]
pub struct CredentialConfig {
    /// `--username` + the password read from stdin; applies to every registry of the run.
    pub explicit: Option<(String, Secret)>,
    /// The process environment (`HOME`, `DOCKER_CONFIG`, `PATH` for helpers, …).
    pub env: BTreeMap<String, String>,
}

impl fmt::Debug for CredentialConfig {
    /// Variable names only: values such as `TAGGUARD_PASSWORD` or `DOCKER_AUTH_CONFIG` are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("explicit", &self.explicit)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredentialError {
    #[error("could not read credentials file {path}: {source}")]
    #[diagnostic(
        code(tagguard::credentials::read),
        help("make the file readable, or point DOCKER_CONFIG / REGISTRY_AUTH_FILE elsewhere")
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {path} is not valid JSON (line {line}, column {column})")]
    #[diagnostic(
        code(tagguard::credentials::json),
        help("fix the file (`docker login` rewrites it), or point DOCKER_CONFIG elsewhere")
    )]
    Json {
        path: String,
        line: usize,
        column: usize,
    },
    #[error("{path}: auths[{key:?}].auth is not base64 of \"username:password\"")]
    #[diagnostic(
        code(tagguard::credentials::bad_auth),
        help("log in again with `docker login`, which writes the entry correctly")
    )]
    BadAuth { path: String, key: String },
    #[error(
        "credential helper docker-credential-{helper} (from {config}) for {host} could not be run: {source}; \
         install it on PATH or remove it from the config"
    )]
    #[diagnostic(
        code(tagguard::credentials::helper_missing),
        help("install docker-credential-{helper} on PATH, or remove it from {config}")
    )]
    HelperSpawn {
        helper: String,
        config: String,
        host: String,
        source: std::io::Error,
    },
    #[error(
        "credential helper docker-credential-{helper} (from {config}) failed for {host} ({status})"
    )]
    #[diagnostic(
        code(tagguard::credentials::helper_failed),
        help("run `docker-credential-{helper} get` with the server URL on stdin to see why")
    )]
    HelperFailed {
        helper: String,
        config: String,
        host: String,
        status: String,
    },
    #[error(
        "credential helper docker-credential-{helper} (from {config}) gave an answer for {host} that is not the expected JSON"
    )]
    #[diagnostic(
        code(tagguard::credentials::helper_output),
        help("the helper must print {{\"Username\":…,\"Secret\":…}}; update or replace it")
    )]
    HelperOutput {
        helper: String,
        config: String,
        host: String,
    },
    #[error(
        "credential helper docker-credential-{helper} (from {config}) gave no answer for {host} \
         within {}s and was stopped",
        .deadline.as_secs()
    )]
    #[diagnostic(
        code(tagguard::credentials::helper_timeout),
        help(
            "a helper that waits (for a keyring unlock, a login prompt) cannot answer in CI; \
             unlock it first, or give credentials with TAGGUARD_USERNAME/TAGGUARD_PASSWORD"
        )
    )]
    HelperTimeout {
        helper: String,
        config: String,
        host: String,
        deadline: Duration,
    },
    #[error("TAGGUARD_USERNAME is set but TAGGUARD_PASSWORD is not (or the other way round)")]
    #[diagnostic(
        code(tagguard::credentials::half_environment),
        help("set both TAGGUARD_USERNAME and TAGGUARD_PASSWORD, or neither")
    )]
    HalfEnvironment,
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Does a config key (`https://ghcr.io/v2/`, `ghcr.io`, `https://index.docker.io/v1/`) name `host`?
pub fn key_matches(key: &str, host: &str) -> bool {
    let had_scheme = key.starts_with("https://") || key.starts_with("http://");
    let stripped = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let key_host = match stripped.split_once('/') {
        Some((h, _)) if had_scheme => h,
        Some(_) => return false, // podman's repository-scoped keys (`quay.io/org`): not a host
        None => stripped,
    };
    let key_host = key_host.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if host == DOCKER_HUB {
        matches!(
            key_host.as_str(),
            "index.docker.io" | "docker.io" | "registry-1.docker.io"
        )
    } else {
        key_host == host
    }
}

/// The server URL credential helpers and Docker know a registry by.
pub fn server_url(host: &str) -> String {
    if host == DOCKER_HUB {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// Finds credentials for `host` (as in a [`Reference`](super::Reference): `ghcr.io`,
/// `localhost:5000`, [`DOCKER_HUB`]).
pub fn resolve(
    host: &str,
    config: &CredentialConfig,
    deadline: Duration,
) -> Result<Resolved, CredentialError> {
    let env = &config.env;
    let found = |credential, source| {
        Ok(Resolved {
            credential: Some(credential),
            source,
        })
    };

    if let Some((user, password)) = &config.explicit {
        return found(
            Credential::password(user.clone(), password.clone()),
            CredentialSource::Explicit,
        );
    }
    match (env.get("TAGGUARD_USERNAME"), env.get("TAGGUARD_PASSWORD")) {
        (Some(u), Some(p)) => {
            return found(
                Credential::password(u.clone(), Secret::new(p.clone())),
                CredentialSource::Environment,
            );
        }
        (None, None) => {}
        _ => return Err(CredentialError::HalfEnvironment),
    }
    if let Some(json) = env.get("DOCKER_AUTH_CONFIG") {
        let file = parse_auth_file(json, "DOCKER_AUTH_CONFIG")?;
        if let Some((key, c)) = from_auths(&file, host, "DOCKER_AUTH_CONFIG")? {
            return found(c, CredentialSource::DockerAuthConfig { key });
        }
    }
    let docker_config = match env.get("DOCKER_CONFIG") {
        Some(dir) => Some(Path::new(dir).join("config.json")),
        None => env
            .get("HOME")
            .map(|h| Path::new(h).join(".docker/config.json")),
    };
    if let Some(path) = docker_config
        && let Some(resolved) = from_docker_config(host, path, env, deadline)?
    {
        return Ok(resolved);
    }
    let podman = match env.get("REGISTRY_AUTH_FILE") {
        Some(p) => Some(PathBuf::from(p)),
        None => env
            .get("XDG_RUNTIME_DIR")
            .map(|d| Path::new(d).join("containers/auth.json")),
    };
    if let Some(path) = podman
        && let Some(file) = read_auth_file(&path)?
        && let Some((key, c)) = from_auths(&file, host, &path.display().to_string())?
    {
        return found(c, CredentialSource::PodmanAuthFile { path, key });
    }
    if let (Some(reg), Some(u), Some(p)) = (
        env.get("CI_REGISTRY"),
        env.get("CI_REGISTRY_USER"),
        env.get("CI_REGISTRY_PASSWORD"),
    ) && reg.eq_ignore_ascii_case(host)
    {
        return found(
            Credential::password(u.clone(), Secret::new(p.clone())),
            CredentialSource::GitlabCi,
        );
    }
    Ok(Resolved {
        credential: None,
        source: CredentialSource::Anonymous,
    })
}

/// Credentials for `host` from docker's `config.json` at `path`: its `credHelpers` entry for the
/// host, else its `auths`, else its `credsStore`.
fn from_docker_config(
    host: &str,
    path: PathBuf,
    env: &BTreeMap<String, String>,
    deadline: Duration,
) -> Result<Option<Resolved>, CredentialError> {
    let Some(file) = read_auth_file(&path)? else {
        return Ok(None);
    };
    let found = |credential, source| {
        Some(Resolved {
            credential: Some(credential),
            source,
        })
    };
    let helper = file
        .cred_helpers
        .iter()
        .find(|(k, _)| key_matches(k, host))
        .map(|(_, v)| v.clone());
    if let Some(helper) = helper {
        let c = run_helper(&helper, host, &path, env, deadline)?;
        return Ok(c.and_then(|c| {
            found(
                c,
                CredentialSource::CredentialHelper {
                    helper,
                    config: path,
                },
            )
        }));
    }
    if let Some((key, c)) = from_auths(&file, host, &path.display().to_string())? {
        return Ok(found(c, CredentialSource::DockerConfig { path, key }));
    }
    if let Some(store) = file.creds_store.clone().filter(|s| !s.is_empty())
        && let Some(c) = run_helper(&store, host, &path, env, deadline)?
    {
        return Ok(found(
            c,
            CredentialSource::CredentialHelper {
                helper: store,
                config: path,
            },
        ));
    }
    Ok(None)
}

/// Where [`resolve`] looks, in its order, for a message when none of it had credentials:
/// `TAGGUARD_USERNAME/TAGGUARD_PASSWORD, DOCKER_AUTH_CONFIG, /home/me/.docker/config.json
/// (auths, credHelpers, credsStore), …`.
pub fn looked_in(config: &CredentialConfig) -> String {
    let env = &config.env;
    let mut places = vec![
        "--username/--password-stdin".to_owned(),
        "TAGGUARD_USERNAME/TAGGUARD_PASSWORD".to_owned(),
        "DOCKER_AUTH_CONFIG".to_owned(),
    ];
    match (env.get("DOCKER_CONFIG"), env.get("HOME")) {
        (Some(dir), _) => places.push(format!(
            "{} (DOCKER_CONFIG; auths, credHelpers, credsStore)",
            Path::new(dir).join("config.json").display()
        )),
        (None, Some(home)) => places.push(format!(
            "{} (auths, credHelpers, credsStore)",
            Path::new(home).join(".docker/config.json").display()
        )),
        (None, None) => {
            places.push("no Docker config (neither DOCKER_CONFIG nor HOME is set)".into())
        }
    }
    match (env.get("REGISTRY_AUTH_FILE"), env.get("XDG_RUNTIME_DIR")) {
        (Some(p), _) => places.push(format!("{p} (REGISTRY_AUTH_FILE)")),
        (None, Some(d)) => places.push(
            Path::new(d)
                .join("containers/auth.json")
                .display()
                .to_string(),
        ),
        (None, None) => places.push("no podman auth file (REGISTRY_AUTH_FILE is not set)".into()),
    }
    places.push("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (GitLab CI, for $CI_REGISTRY)".into());
    places.join(", ")
}

fn parse_auth_file(text: &str, origin: &str) -> Result<AuthFile, CredentialError> {
    // Only the position is reported: serde's message could quote a secret value.
    serde_json::from_str(text).map_err(|e| CredentialError::Json {
        path: origin.to_owned(),
        line: e.line(),
        column: e.column(),
    })
}

fn read_auth_file(path: &Path) -> Result<Option<AuthFile>, CredentialError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_auth_file(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn from_auths(
    file: &AuthFile,
    host: &str,
    origin: &str,
) -> Result<Option<(String, Credential)>, CredentialError> {
    // An exact key wins over a normalized one (`ghcr.io` over `https://ghcr.io/v1/`).
    let mut keys: Vec<&String> = file.auths.keys().filter(|k| key_matches(k, host)).collect();
    keys.sort_by_key(|k| (k.as_str() != host, k.as_str() != server_url(host)));
    for key in keys {
        let entry = &file.auths[key];
        let (mut user, mut pass) = (entry.username.clone(), entry.password.clone());
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || CredentialError::BadAuth {
                path: origin.to_owned(),
                key: key.clone(),
            };
            let decoded = B64.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
            user = Some(u.to_owned());
            pass = Some(p.to_owned());
        }
        if let Some(token) = entry.identity_token.as_deref().filter(|t| !t.is_empty()) {
            let credential = Credential {
                username: user.unwrap_or_default(),
                secret: CredentialSecret::IdentityToken(Secret::new(token)),
            };
            return Ok(Some((key.clone(), credential)));
        }
        if let (Some(u), Some(p)) = (user, pass)
            && !(u.is_empty() && p.is_empty())
        {
            return Ok(Some((key.clone(), Credential::password(u, Secret::new(p)))));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
