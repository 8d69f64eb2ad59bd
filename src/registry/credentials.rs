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
        && let Some(file) = read_auth_file(&path)?
    {
        let helper = file
            .cred_helpers
            .iter()
            .find(|(k, _)| key_matches(k, host))
            .map(|(_, v)| v.clone());
        if let Some(helper) = helper {
            if let Some(c) = run_helper(&helper, host, &path, env, deadline)? {
                return found(
                    c,
                    CredentialSource::CredentialHelper {
                        helper,
                        config: path,
                    },
                );
            }
        } else if let Some((key, c)) = from_auths(&file, host, &path.display().to_string())? {
            return found(c, CredentialSource::DockerConfig { path, key });
        } else if let Some(store) = file.creds_store.clone().filter(|s| !s.is_empty())
            && let Some(c) = run_helper(&store, host, &path, env, deadline)?
        {
            return found(
                c,
                CredentialSource::CredentialHelper {
                    helper: store,
                    config: path,
                },
            );
        }
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
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(5);

    fn env(pairs: &[(&str, &str)]) -> CredentialConfig {
        CredentialConfig {
            explicit: None,
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn user_of(r: &Resolved) -> &str {
        &r.credential.as_ref().unwrap().username
    }

    #[test]
    fn host_key_matching_like_docker() {
        assert!(key_matches("https://index.docker.io/v1/", DOCKER_HUB));
        assert!(key_matches("docker.io", DOCKER_HUB));
        assert!(key_matches("https://ghcr.io/v2/", "ghcr.io"));
        assert!(key_matches("GHCR.io", "ghcr.io"));
        assert!(key_matches("localhost:5000", "localhost:5000"));
        assert!(!key_matches("localhost:5001", "localhost:5000"));
        assert!(!key_matches("quay.io/org", "quay.io"));
        assert!(!key_matches("https://index.docker.io/v1/", "ghcr.io"));
    }

    #[test]
    fn order_explicit_then_env_then_docker_auth_config() {
        let auth = B64.encode("cfguser:cfgpass");
        let mut c = env(&[
            ("TAGGUARD_USERNAME", "envuser"),
            ("TAGGUARD_PASSWORD", "envpass"),
            (
                "DOCKER_AUTH_CONFIG",
                &format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}}}}}}"#),
            ),
        ]);
        c.explicit = Some(("cli".into(), Secret::new("p")));
        let r = resolve("ghcr.io", &c, D).unwrap();
        assert_eq!(
            (user_of(&r), &r.source),
            ("cli", &CredentialSource::Explicit)
        );
        c.explicit = None;
        let r = resolve("ghcr.io", &c, D).unwrap();
        assert_eq!(
            (user_of(&r), &r.source),
            ("envuser", &CredentialSource::Environment)
        );
        c.env.remove("TAGGUARD_USERNAME");
        assert!(matches!(
            resolve("ghcr.io", &c, D),
            Err(CredentialError::HalfEnvironment)
        ));
        c.env.remove("TAGGUARD_PASSWORD");
        let r = resolve("ghcr.io", &c, D).unwrap();
        assert_eq!(user_of(&r), "cfguser");
        assert_eq!(
            r.source.to_string(),
            "DOCKER_AUTH_CONFIG auths[\"ghcr.io\"]"
        );
        assert_eq!(
            resolve("quay.io", &c, D).unwrap().source,
            CredentialSource::Anonymous
        );
    }

    #[test]
    fn docker_config_identity_token_and_gitlab() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"username":"hub","password":"x"}},
                    "acr.example.io":{{"auth":"{}","identitytoken":"refresh"}}}}}}"#,
                B64.encode(format!("{ACR_TOKEN_USERNAME}:"))
            ),
        )
        .unwrap();
        let d = dir.path().to_str().unwrap();
        let c = env(&[
            ("DOCKER_CONFIG", d),
            ("CI_REGISTRY", "gitlab.example.io:5050"),
            ("CI_REGISTRY_USER", "gitlab-ci-token"),
            ("CI_REGISTRY_PASSWORD", "job"),
        ]);
        let r = resolve(DOCKER_HUB, &c, D).unwrap();
        assert_eq!(user_of(&r), "hub");
        let r = resolve("acr.example.io", &c, D).unwrap();
        assert!(
            matches!(r.credential.unwrap().secret, CredentialSecret::IdentityToken(ref t) if t.expose() == "refresh")
        );
        let r = resolve("gitlab.example.io:5050", &c, D).unwrap();
        assert_eq!(
            (user_of(&r), &r.source),
            ("gitlab-ci-token", &CredentialSource::GitlabCi)
        );
    }

    #[test]
    fn broken_files_name_the_file_but_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"h":{"auth":"not-base64!!"}}}"#,
        )
        .unwrap();
        let c = env(&[("DOCKER_CONFIG", dir.path().to_str().unwrap())]);
        let e = resolve("h", &c, D).unwrap_err().to_string();
        assert!(
            e.contains("config.json: auths[\"h\"].auth is not base64"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"h": {"password": 1234567}}"#,
        )
        .unwrap();
        let e = resolve("h", &c, D).unwrap_err().to_string();
        assert!(e.contains("is not valid JSON (line 1"), "{e}");
        assert!(!e.contains("1234567"), "{e}");
    }

    #[test]
    fn acr_username_makes_the_password_a_refresh_token() {
        let c = Credential::password(ACR_TOKEN_USERNAME, Secret::new("r"));
        assert!(matches!(c.secret, CredentialSecret::IdentityToken(_)));
    }
}
