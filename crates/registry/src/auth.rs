//! Authorization for one registry: anonymous, Basic, or Bearer tokens from the challenge's realm
//! (password or refresh-token grant). Tokens are cached per scope set and fetched once
//! (single-flight): concurrent lookups needing the same scope wait for one fetch.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::HeaderValue;

use super::challenge::Challenge;
use super::credentials::{Credential, CredentialSecret, CredentialSource, Resolved};
use super::error::{RegistryError, RequestId};
use super::transport::TransportConfig;
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

    /// What deleting manifests and tags needs (`tagguard prune`).
    pub fn delete(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull,push,delete"))
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
pub struct Token {
    pub(super) value: Secret,
    /// Renew before this.
    pub(super) fresh_until: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// What a token is asked for: the scope set (normalised), and the realm and service of the
/// registry's Bearer challenge.
pub struct TokenAsk {
    pub scopes: Vec<Scope>,
    pub realm: String,
    pub service: Option<String>,
}

pub struct Auth {
    pub(super) host: String,
    pub(super) credential: Option<Credential>,
    pub(super) source: CredentialSource,
    /// Where credentials were looked for, for the message when none were found.
    looked: String,
    scheme: Mutex<Option<Scheme>>,
    /// Held by the one request that is learning the scheme; the others wait on it.
    probe: tokio::sync::Mutex<()>,
    tokens: Mutex<HashMap<Vec<Scope>, Slot>>,
    /// Scope sets whose credentials were refused (by the token endpoint or by a 401 to a
    /// token): not asked for again in this run. The value is the first refusal, as reported.
    refused: Mutex<HashMap<Vec<Scope>, String>>,
}

impl Auth {
    pub fn new(
        host: &str,
        resolved: Resolved,
        looked: String,
        _transport: &TransportConfig,
    ) -> Auth {
        Auth {
            host: host.to_owned(),
            credential: resolved.credential,
            source: resolved.source,
            looked,
            scheme: Mutex::new(None),
            probe: tokio::sync::Mutex::new(()),
            tokens: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
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

    /// An unauthenticated request got through: the registry lets us in anonymously, unless a
    /// challenge (which always wins) was learned meanwhile.
    pub fn learn_anonymous(&self) {
        let mut scheme = self.scheme.lock().expect("auth lock");
        if scheme.is_none() {
            log::debug!("registry {}: auth scheme anonymous", self.host);
            *scheme = Some(Scheme::Anonymous);
        }
    }

    /// Until the scheme is known, one request at a time goes out to learn it; the others wait
    /// for what it learns.
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

    /// The registry rejected the token sent for `scopes`: forget it, so the one retry after a
    /// 401 fetches a fresh one.
    pub fn rejected(&self, scopes: &[Scope]) {
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

    /// Remembers that credentials for `scopes` were refused (a 401 or 403 after sending them),
    /// so the rest of the run does not ask again.
    pub fn remember_denied(&self, scopes: &[Scope], error: &RegistryError) {
        if self.credential.is_some() || matches!(self.scheme(), Some(Scheme::Bearer { .. })) {
            self.refused
                .lock()
                .expect("auth lock")
                .entry(normalize(scopes))
                .or_insert_with(|| error.to_string());
        }
    }

    fn refused_before(&self, scopes: &[Scope], request: &RequestId) -> Option<RegistryError> {
        let key = normalize(scopes);
        let first = self.refused.lock().expect("auth lock").get(&key).cloned()?;
        Some(RegistryError::DeniedBefore {
            request: request.clone(),
            scope: scopes_display(&key),
            first,
            help: self.help(401, scopes),
        })
    }

    /// `; tagguard looked for credentials in: …` when none were found, else empty: for the
    /// message itself, so it is there however the error is shown.
    pub fn looked_note(&self) -> String {
        if self.source == CredentialSource::Anonymous {
            format!("; tagguard looked for credentials in: {}", self.looked)
        } else {
            String::new()
        }
    }

    /// What to do about a 401/403: how to provide credentials when none were found, else which
    /// credentials to check.
    pub fn help(&self, status: u16, scopes: &[Scope]) -> String {
        let host = &self.host;
        if self.source == CredentialSource::Anonymous {
            return format!(
                "provide credentials with `docker login {host}`, or TAGGUARD_USERNAME and \
                 TAGGUARD_PASSWORD (in GitHub Actions: ${{{{ github.actor }}}} and \
                 ${{{{ secrets.GITHUB_TOKEN }}}}; in GitLab CI, CI_REGISTRY_USER and \
                 CI_REGISTRY_PASSWORD are used for $CI_REGISTRY without further setup)"
            );
        }
        if status == 403 {
            return format!(
                "the credentials from {} were accepted but may not do {}: grant that access, or \
                 use other credentials",
                self.source,
                scopes_display(scopes)
            );
        }
        format!(
            "the credentials from {} were not accepted: check them, or log in again \
             (`docker login {host}`)",
            self.source
        )
    }

    /// The `Authorization` header for `scopes`. When the scheme needs a token and none is
    /// cached, `fetch` gets one (the engine, through itself); this cache keeps it, once per
    /// scope set (single-flight).
    pub async fn header<Fut>(
        &self,
        scopes: &[Scope],
        request: &RequestId,
        fetch: impl FnOnce(TokenAsk) -> Fut,
    ) -> Result<Option<HeaderValue>, RegistryError>
    where
        Fut: Future<Output = Result<Token, RegistryError>>,
    {
        if let Some(e) = self.refused_before(scopes, request) {
            return Err(e);
        }
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
                let ask = TokenAsk {
                    scopes: normalize(scopes),
                    realm,
                    service,
                };
                let token = self.token(scopes, ask, request, fetch).await?;
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

    async fn token<Fut>(
        &self,
        scopes: &[Scope],
        ask: TokenAsk,
        request: &RequestId,
        fetch: impl FnOnce(TokenAsk) -> Fut,
    ) -> Result<Secret, RegistryError>
    where
        Fut: Future<Output = Result<Token, RegistryError>>,
    {
        let key = ask.scopes.clone();
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
        // Another request waiting for this slot may have been refused meanwhile.
        if let Some(e) = self.refused_before(scopes, request) {
            return Err(e);
        }
        let token = match fetch(ask).await {
            Ok(token) => token,
            Err(e) => {
                if matches!(
                    e,
                    RegistryError::Token {
                        status: 400..500,
                        ..
                    }
                ) {
                    self.refused
                        .lock()
                        .expect("auth lock")
                        .entry(key)
                        .or_insert_with(|| e.to_string());
                }
                return Err(e);
            }
        };
        let value = token.value.clone();
        *guard = Some(token);
        Ok(value)
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
    use crate::challenge;

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
