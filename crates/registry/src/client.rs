//! The OCI Distribution API client for one registry host. One connection pool per registry; the
//! first 401 teaches the auth scheme and that request is sent again, so there is no extra `/v2/`
//! ping. The operations live by concern: `manifests.rs`, `tags.rs`, `blobs.rs`; every request
//! goes through the engine (`engine.rs`).

use std::sync::Mutex;

use reqwest::{Method, Url};

use super::auth::{Auth, Scope, scopes_display};
use super::credentials::{self, CredentialConfig, CredentialSource, Resolved};
use super::engine::{Answer, Outgoing};
use super::error::{RegistryError, RequestId, describe, describe_body, error_entries};
use super::limiter::Limiter;
use super::refusal;
use super::transport::{TransportConfig, authority};

mod referrers;

/// A client for one registry host.
pub struct RegistryClient {
    pub(super) host: String,
    pub(super) base: Url,
    pub(super) http: reqwest::Client,
    pub(super) auth: Auth,
    pub(super) transport: TransportConfig,
    /// Set when a request timed out on every attempt: the registry has stopped answering, and
    /// the rest of the run does not wait for it again.
    stalled: Mutex<Option<String>>,
    /// How many requests go to this registry at once (adapts to 429 and 503).
    pub(super) limiter: Limiter,
}

impl RegistryClient {
    /// Resolves credentials for `host` and sets up the connection pool. No request is sent.
    pub fn new(
        host: &str,
        credentials: &CredentialConfig,
        transport: &TransportConfig,
    ) -> Result<RegistryClient, RegistryError> {
        let resolved = credentials::resolve(host, credentials, transport.helper_deadline).map_err(
            |source| RegistryError::Credentials {
                host: host.to_owned(),
                source,
            },
        )?;
        log::debug!("registry {host}: credentials from {}", resolved.source);
        let base =
            Url::parse(&format!("{}://{host}/", transport.scheme_for(host))).map_err(|e| {
                RegistryError::Malformed {
                    request: RequestId {
                        host: host.to_owned(),
                        method: "-".into(),
                        path: "/".into(),
                    },
                    detail: format!("cannot make a URL of the host: {e}"),
                }
            })?;
        let looked = credentials::looked_in(credentials);
        let auth = Auth::new(host, resolved, looked, transport);
        RegistryClient::with_auth(host, base, auth, transport)
    }

    /// The engine for the web API at `base` (`web.rs`): its host's connection pool, limiter
    /// and deadlines, and no registry credentials (a web request carries its own). No request
    /// is sent.
    pub(super) fn for_web(base: &Url, transport: &TransportConfig) -> Result<Self, RegistryError> {
        let host = authority(base);
        let anonymous = Resolved {
            credential: None,
            source: CredentialSource::Anonymous,
        };
        let auth = Auth::new(&host, anonymous, String::new(), transport);
        let mut origin = base.clone();
        origin.set_path("/");
        origin.set_query(None);
        RegistryClient::with_auth(&host, origin, auth, transport)
    }

    fn with_auth(
        host: &str,
        base: Url,
        auth: Auth,
        transport: &TransportConfig,
    ) -> Result<Self, RegistryError> {
        Ok(RegistryClient {
            host: host.to_owned(),
            base,
            http: transport.http_client(host)?,
            auth,
            transport: transport.clone(),
            stalled: Mutex::new(None),
            limiter: Limiter::new(transport.concurrency),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub(super) fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a registry path joins onto the base URL")
    }

    pub(super) fn request_id(&self, method: &Method, url: &Url) -> RequestId {
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host = if authority(url) == self.host {
            self.host.clone()
        } else {
            format!("{} (redirected to {})", self.host, authority(url))
        };
        RequestId {
            host,
            method: method.to_string(),
            path,
        }
    }

    /// The error for a request not sent because an earlier one found the registry stalled.
    pub(super) fn gave_up(&self, out: &Outgoing<'_>) -> Option<RegistryError> {
        let first = self.stalled.lock().expect("stall lock").clone()?;
        Some(RegistryError::Stalled {
            request: self.request_id_of(out, &out.url),
            first,
        })
    }

    /// Remembers a registry that timed out on every attempt of a request that was tried more
    /// than once: waiting for it again would only stretch the run.
    pub(super) fn note_failure(&self, e: &RegistryError, out: &Outgoing<'_>) {
        if matches!(e, RegistryError::Timeout { .. })
            && self.transport.retry.max_retries > 0
            && out.retry.allows(super::retry::Failure::Lost)
        {
            *self.stalled.lock().expect("stall lock") = Some(e.to_string());
        }
    }

    /// Turns a response that was not what the caller wanted into the error that says why.
    pub(super) fn failure(
        &self,
        request: RequestId,
        response: Answer,
        scopes: &[Scope],
        repository: &str,
        tag: Option<&str>,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let entries = error_entries(&response.body);
        let refusal = refusal::recognise(status, &entries)
            .map(|(rule, e)| (rule, e.clone()))
            .or_else(|| refusal::recognise_text(status, &response.body));
        if let Some((rule, e)) = refusal {
            return RegistryError::Refused {
                request,
                repository: repository.to_owned(),
                tag: tag.map(str::to_owned),
                rule,
                status,
                code: e.code,
                message: e.message,
            };
        }
        match status {
            401 | 403 => {
                let e = RegistryError::Denied {
                    request,
                    status,
                    credentials: self.auth.source().clone(),
                    scope: scopes_display(scopes),
                    detail: describe(&entries),
                    looked: self.auth.looked_note(),
                    help: self.auth.help(status, scopes),
                };
                self.auth.remember_denied(scopes, &e);
                e
            }
            404 if entries.iter().any(|e| e.code == "NAME_UNKNOWN") || entries.is_empty() => {
                RegistryError::UnknownRepository {
                    request,
                    repository: repository.to_owned(),
                }
            }
            _ => RegistryError::Status {
                request,
                status,
                detail: describe_body(&response.body),
            },
        }
    }

    /// Where to go on from a `Location` header (upload sessions).
    pub(super) fn location(
        &self,
        request: &RequestId,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<Url, RegistryError> {
        headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| self.base.join(l).ok())
            .ok_or_else(|| RegistryError::Malformed {
                request: request.clone(),
                detail: "no usable Location header".into(),
            })
    }
}
