//! Authorization for one registry: anonymous, Basic, or Bearer tokens from the challenge's realm
//! (password or refresh-token grant). Tokens are cached per scope set and fetched once
//! (single-flight): concurrent lookups needing the same scope wait for one fetch.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::HeaderValue;

use super::challenge::Challenge;
use super::credentials::{Credential, CredentialSecret, CredentialSource};
use super::error::{RegistryError, RequestId, describe, error_entries};
use crate::secret::Secret;

/// A resource scope such as `repository:acme/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull"))
    }

    pub fn push(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull,push"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does a token granted `self` also cover `other`? (`pull,push` covers `pull`.)
    fn covers(&self, other: &Scope) -> bool {
        let split = |s: &str| -> Option<(String, BTreeSet<String>)> {
            let (res, actions) = s.rsplit_once(':')?;
            Some((
                res.to_owned(),
                actions.split(',').map(str::to_owned).collect(),
            ))
        };
        match (split(&self.0), split(&other.0)) {
            (Some((r1, a1)), Some((r2, a2))) => r1 == r2 && a2.is_subset(&a1),
            _ => self == other,
        }
    }
}

pub fn scopes_display(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the registry asked for, learned from its first 401.
#[derive(Debug, Clone)]
pub enum Scheme {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Scheme {
    /// The best scheme among the registry's challenges: Bearer over Basic.
    pub fn from_challenges(challenges: &[Challenge]) -> Option<Scheme> {
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer")
            && let Some(realm) = b.param("realm")
        {
            return Some(Scheme::Bearer {
                realm: realm.to_owned(),
                service: b.param("service").map(str::to_owned),
            });
        }
        challenges
            .iter()
            .any(|c| c.scheme == "basic")
            .then_some(Scheme::Basic)
    }
}

#[derive(Clone)]
struct Token {
    value: Secret,
    /// Renew before this.
    fresh_until: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

pub struct Auth {
    host: String,
    credential: Option<Credential>,
    source: CredentialSource,
    scheme: Mutex<Option<Scheme>>,
    /// Held by the one request that is sent to learn the scheme; the others wait on it.
    probe: tokio::sync::Mutex<()>,
    tokens: Mutex<HashMap<Vec<Scope>, Slot>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth {
    pub fn new(host: &str, credential: Option<Credential>, source: CredentialSource) -> Auth {
        Auth {
            host: host.to_owned(),
            credential,
            source,
            scheme: Mutex::new(None),
            probe: tokio::sync::Mutex::new(()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme.lock().expect("auth lock").clone()
    }

    pub fn learn(&self, scheme: Scheme) {
        log::debug!(
            "registry {}: auth scheme {:?}",
            self.host,
            scheme_name(&scheme)
        );
        *self.scheme.lock().expect("auth lock") = Some(scheme);
    }

    /// Until the scheme is known, one request at a time goes out unauthenticated to learn it.
    pub async fn probe_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if self.scheme().is_some() {
            return None;
        }
        let guard = self.probe.lock().await;
        if self.scheme().is_some() {
            None
        } else {
            Some(guard)
        }
    }

    /// Forget a token the registry rejected so the next call fetches a fresh one.
    pub fn invalidate(&self, scopes: &[Scope]) {
        let slot = self
            .tokens
            .lock()
            .expect("auth lock")
            .get(&normalize(scopes))
            .cloned();
        if let Some(slot) = slot
            && let Ok(mut t) = slot.try_lock()
        {
            *t = None;
        }
    }

    /// The `Authorization` header for `scopes`, fetching a token if the scheme needs one.
    pub async fn header(
        &self,
        http: &reqwest::Client,
        scopes: &[Scope],
        request: &RequestId,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let scheme = self.scheme();
        let value = match scheme {
            None | Some(Scheme::Anonymous) => return Ok(None),
            Some(Scheme::Basic) => match &self.credential {
                Some(Credential {
                    username,
                    secret: CredentialSecret::Password(p),
                }) => Secret::new(format!(
                    "Basic {}",
                    B64.encode(format!("{username}:{}", p.expose()))
                )),
                // Basic has no place for a refresh token; try without.
                _ => return Ok(None),
            },
            Some(Scheme::Bearer { realm, service }) => {
                let token = self
                    .token(http, scopes, &realm, service.as_deref(), request)
                    .await?;
                Secret::new(format!("Bearer {}", token.expose()))
            }
        };
        let mut header =
            HeaderValue::from_str(value.expose()).map_err(|_| RegistryError::Malformed {
                request: request.clone(),
                detail: "credentials contain characters that cannot be sent in a header".into(),
            })?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    async fn token(
        &self,
        http: &reqwest::Client,
        scopes: &[Scope],
        realm: &str,
        service: Option<&str>,
        request: &RequestId,
    ) -> Result<Secret, RegistryError> {
        let key = normalize(scopes);
        // A cached token for a wider scope set serves too (push+pull on target covers pull).
        let slots: Vec<Slot> = {
            let map = self.tokens.lock().expect("auth lock");
            map.iter()
                .filter(|(k, _)| key.iter().all(|s| k.iter().any(|g| g.covers(s))))
                .map(|(_, v)| v.clone())
                .collect()
        };
        for slot in slots {
            if let Ok(t) = slot.try_lock()
                && let Some(t) = t.as_ref()
                && t.fresh_until > Instant::now()
            {
                return Ok(t.value.clone());
            }
        }
        let slot = self
            .tokens
            .lock()
            .expect("auth lock")
            .entry(key.clone())
            .or_default()
            .clone();
        let mut guard = slot.lock().await;
        if let Some(t) = guard.as_ref()
            && t.fresh_until > Instant::now()
        {
            return Ok(t.value.clone());
        }
        let token = self
            .fetch_token(http, &key, realm, service, request)
            .await?;
        let value = token.value.clone();
        *guard = Some(token);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        scopes: &[Scope],
        realm: &str,
        service: Option<&str>,
        request: &RequestId,
    ) -> Result<Token, RegistryError> {
        let scope_text = scopes_display(scopes);
        let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Malformed {
            request: request.clone(),
            detail: format!("the Bearer challenge's realm {realm:?} is not a URL: {e}"),
        })?;
        let token_request = RequestId {
            host: self.host.clone(),
            method: "GET".into(),
            path: realm.to_owned(),
        };
        let refresh = match &self.credential {
            Some(Credential {
                secret: CredentialSecret::IdentityToken(t),
                ..
            }) => Some(t),
            _ => None,
        };
        let builder = if let Some(refresh) = refresh {
            // OAuth2 refresh-token grant (Docker identity tokens, Azure ACR).
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            form.append_pair("scope", &scope_text);
            form.append_pair("client_id", "tagguard");
            form.append_pair("refresh_token", refresh.expose());
            let body = Secret::new(form.finish());
            http.post(url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.expose().to_owned())
        } else {
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scopes {
                    q.append_pair("scope", s.as_str());
                }
                q.append_pair("client_id", "tagguard");
                if let Some(c) = &self.credential {
                    q.append_pair("account", &c.username);
                }
            }
            let mut b = http.get(url.clone());
            if let Some(Credential {
                username,
                secret: CredentialSecret::Password(p),
            }) = &self.credential
            {
                let mut h = HeaderValue::from_str(&format!(
                    "Basic {}",
                    B64.encode(format!("{username}:{}", p.expose()))
                ))
                .map_err(|_| RegistryError::Malformed {
                    request: request.clone(),
                    detail: "credentials contain characters that cannot be sent in a header".into(),
                })?;
                h.set_sensitive(true);
                b = b.header(reqwest::header::AUTHORIZATION, h);
            }
            b
        };
        let token_request = RequestId {
            method: if refresh.is_some() { "POST" } else { "GET" }.into(),
            path: format!(
                "{}{}",
                url.path(),
                url.query().map(|q| format!("?{q}")).unwrap_or_default()
            ),
            host: format!(
                "{} (token endpoint {})",
                token_request.host,
                url.host_str().unwrap_or("")
            ),
        };
        log::debug!("{token_request}: fetching a token for {scope_text}");
        let response = builder
            .send()
            .await
            .map_err(|e| super::client::classify(e, &token_request, "system trust store"))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| RegistryError::Http {
            request: token_request.clone(),
            detail: format!("reading the token response: {e}"),
        })?;
        if !(200..300).contains(&status) {
            return Err(RegistryError::Token {
                request: request.clone(),
                realm: realm.to_owned(),
                status,
                credentials: self.source.clone(),
                scope: scope_text,
                detail: describe(&error_entries(&body)),
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| RegistryError::Malformed {
                request: token_request.clone(),
                detail: "the token response is not JSON with a \"token\" or \"access_token\""
                    .into(),
            })?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| RegistryError::Malformed {
                request: token_request.clone(),
                detail: "the token response has neither \"token\" nor \"access_token\"".into(),
            })?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        log::debug!(
            "{token_request}: got a token for {scope_text}, valid {}s",
            lifetime.as_secs()
        );
        Ok(Token {
            value: Secret::new(value),
            fresh_until: Instant::now() + lifetime - margin,
        })
    }
}

fn normalize(scopes: &[Scope]) -> Vec<Scope> {
    let set: BTreeSet<Scope> = scopes.iter().cloned().collect();
    set.into_iter().collect()
}

fn scheme_name(s: &Scheme) -> &'static str {
    match s {
        Scheme::Anonymous => "anonymous",
        Scheme::Basic => "basic",
        Scheme::Bearer { .. } => "bearer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::challenge;

    #[test]
    fn scope_coverage() {
        assert!(Scope::push("a").covers(&Scope::pull("a")));
        assert!(!Scope::pull("a").covers(&Scope::push("a")));
        assert!(!Scope::push("a").covers(&Scope::pull("b")));
        assert_eq!(
            scopes_display(&normalize(&[
                Scope::pull("b"),
                Scope::push("a"),
                Scope::pull("b")
            ])),
            "repository:a:pull,push repository:b:pull"
        );
    }

    #[test]
    fn bearer_preferred_over_basic() {
        let c =
            challenge::parse([r#"Basic realm="r", Bearer realm="https://t/token",service="s""#]);
        assert!(
            matches!(Scheme::from_challenges(&c), Some(Scheme::Bearer { ref realm, .. }) if realm == "https://t/token")
        );
        let c = challenge::parse([r#"Basic realm="Registry Realm""#]);
        assert!(matches!(Scheme::from_challenges(&c), Some(Scheme::Basic)));
        assert!(Scheme::from_challenges(&challenge::parse(["Bearer service=x"])).is_none());
    }
}
