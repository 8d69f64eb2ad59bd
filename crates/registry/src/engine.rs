//! The request engine: every request to a registry, to its token endpoint and to the web APIs
//! beside registries (`web.rs`) goes through here, [`RegistryClient::send`]: the limiter, the
//! deadline of silence, redirects and the retry policy. One attempt sends the request (learning
//! the auth scheme from a first 401, following redirects with credentials only for the client's
//! own host) and reads the answer; [`retrying`] repeats attempts as the request's retry class
//! allows. The request types are in `engine/outgoing.rs`: a token request ([`Outgoing::token`])
//! carries its own credentials, learns no scheme, and its endpoint's redirect is its answer; a
//! web-API request ([`Outgoing::web`]) carries a fixed credential header for the API's host
//! alone and learns no scheme.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::auth::{Scheme, Scope};
use super::challenge;
use super::classify::{classify, classify_body};
use super::client::RegistryClient;
use super::error::{RegistryError, RequestId, describe_body};
use super::retry::{Attempt, Failure, parse_retry_after, retrying};
use super::silence::{Progress, body_of, streamed_body, watched};
use super::transport::{TransportConfig, authority};

mod outgoing;

pub(super) use outgoing::{Body, Endpoint, Outgoing};

const MAX_REDIRECTS: u32 = 5;
/// How much of an error answer is read for its message.
pub const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Held by the request that is learning a registry's auth scheme (see [`RegistryClient::send`]);
/// released as soon as it has learned it.
type Gate<'a> = std::sync::Mutex<Option<tokio::sync::MutexGuard<'a, ()>>>;

/// A response read whole: where it came from, status, headers and (up to the request's limit)
/// body. Reading the body
/// inside the attempt makes a reset or truncation mid-body a retryable failure like any other.
pub(super) struct Answer {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The unread response, when the request asked to stream a successful body.
    pub stream: Option<reqwest::Response>,
}

impl Answer {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// Why a body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Read(Box<RegistryError>),
}

/// Reads a body up to `limit` bytes, each wait for the next piece bounded by `idle`.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    idle: Duration,
    request: &RequestId,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(idle, response.chunk()).await {
            Err(_) => {
                return Err(BodyError::Read(Box::new(RegistryError::Timeout {
                    request: request.clone(),
                    after: idle,
                })));
            }
            Ok(Err(e)) => {
                return Err(BodyError::Read(Box::new(classify_body(e, request, idle))));
            }
            Ok(Ok(None)) => return Ok(out),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
}

fn failed<T>(
    error: RegistryError,
    retry_after: Option<Duration>,
) -> Result<Attempt<T>, RegistryError> {
    match Failure::of(&error) {
        Some(failure) => Ok(Attempt::Failed {
            error,
            failure,
            retry_after,
        }),
        None => Err(error),
    }
}

/// Where every request leaves, to the registry, its token endpoint and the web APIs beside it
/// alike: sent under the deadline of silence, with what went wrong below HTTP named.
async fn transmit(
    rb: reqwest::RequestBuilder,
    progress: &Progress,
    idle: Duration,
    request: &RequestId,
    server: &str,
    trust: impl FnOnce() -> String,
) -> Result<reqwest::Response, RegistryError> {
    match watched(rb.send(), progress, idle).await {
        None => Err(RegistryError::Timeout {
            request: request.clone(),
            after: idle,
        }),
        Some(Err(e)) => Err(classify(e, request, server, &trust(), idle)),
        Some(Ok(r)) => Ok(r),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Where a redirect goes, if it may be followed: never to plain HTTP on a host that may not be
/// spoken to in plain HTTP (refused before any lookup of that host), and not past
/// [`MAX_REDIRECTS`].
fn redirect_target(
    transport: &TransportConfig,
    request: &RequestId,
    url: &Url,
    location: &header::HeaderValue,
    redirects: u32,
) -> Result<Url, RegistryError> {
    let target = location
        .to_str()
        .ok()
        .and_then(|l| url.join(l).ok())
        .filter(|t| matches!(t.scheme(), "http" | "https"))
        .ok_or_else(|| RegistryError::Malformed {
            request: request.clone(),
            detail: "redirect with an unusable Location".into(),
        })?;
    if target.scheme() != "https" && !transport.allows_http(&authority(&target)) {
        return Err(RegistryError::InsecureScheme {
            request: request.clone(),
            target: target.to_string(),
        });
    }
    if redirects > MAX_REDIRECTS {
        return Err(RegistryError::Malformed {
            request: request.clone(),
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        });
    }
    log::debug!("{request}: redirected to {}", authority(&target));
    Ok(target)
}

impl RegistryClient {
    /// Sends one logical request through the retry loop; see [`RegistryClient::attempt`].
    ///
    /// Until the auth scheme is known, requests wait for one request (the probe) to learn it —
    /// only as long as that takes, one answer, not its whole exchange — so a registry that asks
    /// for credentials sees one challenge. Without credentials, where the registry most likely
    /// lets us in anonymously, every request's first try goes out at once instead, and the
    /// scheme costs no round trip of its own (a registry that wants a token after all answers
    /// each with a challenge). A request that retries while the scheme is still unknown (the
    /// registry left its first try unanswered) becomes the probe, through all its tries; the
    /// others wait, then go on with what it learned, or not at all when it found the registry
    /// not answering. A stalled registry sees each request once at most and one request's
    /// retries.
    pub(super) async fn send(
        &self,
        out: Outgoing<'_>,
    ) -> Result<(RequestId, Answer), RegistryError> {
        // Only a registry request waits for the probe: a token request's probe may be what asked
        // for the token, and a web API has no scheme to learn.
        let own = out.is_registry() && authority(&out.url) == self.host;
        let optimistic = self.auth.credential.is_none();
        let gate: Gate<'_> = std::sync::Mutex::new(None);
        let result = retrying(&self.transport.retry, out.retry, |retries| {
            let (out, gate) = (&out, &gate);
            async move {
                let held = gate.lock().expect("gate lock").is_some();
                if own
                    && !held
                    && (retries > 0 || !optimistic)
                    && let Some(g) = self.auth.probe_gate().await
                {
                    *gate.lock().expect("gate lock") = Some(g);
                }
                if let Some(e) = self.gave_up(out) {
                    return Err(e);
                }
                self.attempt(out, gate, retries).await
            }
        })
        .await;
        // Noted before the gate opens, so the requests waiting on it see it. A token endpoint
        // that does not answer is not the registry.
        if let Err(e) = &result
            && !out.is_token()
        {
            self.note_failure(e, &out);
        }
        drop(gate);
        result
    }

    /// One attempt: learns the auth scheme from a 401 and sends again at once, follows redirects
    /// (credentials only to the host they are for), reads the answer. `retries` so far.
    async fn attempt(
        &self,
        out: &Outgoing<'_>,
        gate: &Gate<'_>,
        retries: u32,
    ) -> Result<Attempt<(RequestId, Answer)>, RegistryError> {
        let idle = self.transport.timeout;
        let mut url = out.url.clone();
        let (mut auth_retried, mut redirects) = (false, 0u32);
        loop {
            let request = self.request_id_of(out, &url);
            // Never plain HTTP to a host that may not have it (a `Link`, a `Location`): refused
            // before the host is even looked up.
            if url.scheme() != "https" && !self.transport.allows_http(&authority(&url)) {
                return Err(RegistryError::InsecureScheme {
                    request,
                    target: url.to_string(),
                });
            }
            let same_host = authority(&url) == self.host;
            let auth_header = self.credential(out, same_host, &request).await?;
            let sent_auth = auth_header.is_some();
            let progress = Progress::starting();
            let rb = self.build(out, &url, auth_header, &progress);
            log::debug!("{request}");
            // A turn among the requests in flight to this registry, until its status is known.
            let turn = self.limiter.acquire().await;
            let trust = || self.transport.describe_trust(&self.host);
            let server = out.endpoint.server();
            let response = match transmit(rb, &progress, idle, &request, server, trust).await {
                Ok(r) => r,
                Err(e) => return failed(e, None),
            };
            let status = response.status();
            turn.done(Some(status.as_u16()));
            log::debug!("{request} -> {status}");

            // A streamed body is gone once sent: a challenge cannot be answered by sending again.
            let may_resend = !auth_retried && !out.body.is_streamed();
            if same_host
                && out.is_registry()
                && self.learn_scheme(&response, sent_auth, may_resend, out.scopes, gate)
            {
                auth_retried = true;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && sent_auth && out.body.is_streamed() {
                // The token ran out as the body went: forgotten, so the caller's fresh start
                // fetches a new one. Not a refusal of the credentials, which that start shows.
                self.auth.rejected(out.scopes);
                return Err(RegistryError::Status {
                    request,
                    status: status.as_u16(),
                    detail: "the registry refused the token during the upload".into(),
                });
            }

            if status.is_redirection()
                && out.follows_redirects()
                && let Some(location) = response.headers().get(header::LOCATION)
            {
                redirects += 1;
                url = redirect_target(&self.transport, &request, &url, location, redirects)?;
                continue;
            }

            if !status.is_success()
                && self
                    .transport
                    .retry
                    .status_failed(out.retry, status.as_u16(), retries)
            {
                let after = retry_after(response.headers());
                // Its message, for the error if this was the last try.
                let body = read_limited(response, ERROR_BODY_LIMIT, idle, &request)
                    .await
                    .unwrap_or_default();
                let error = RegistryError::Status {
                    request,
                    status: status.as_u16(),
                    detail: describe_body(&body),
                };
                return failed(error, after);
            }
            return self.read_answer(out, request, response).await;
        }
    }

    /// The credential header of one send of `out`, to the client's own host or not: the
    /// registry's from the token cache, the token endpoint's own, a web API's fixed one (never
    /// to another host).
    async fn credential(
        &self,
        out: &Outgoing<'_>,
        same_host: bool,
        request: &RequestId,
    ) -> Result<Option<(HeaderName, HeaderValue)>, RegistryError> {
        let value = match &out.endpoint {
            Endpoint::Registry if same_host => {
                self.auth
                    .header(out.scopes, request, |ask| self.fetch_token(ask, request))
                    .await?
            }
            Endpoint::Token { authorization } => authorization.clone(),
            Endpoint::Web { credential } if same_host => return Ok(credential.clone()),
            Endpoint::Registry | Endpoint::Web { .. } => None,
        };
        Ok(value.map(|v| (header::AUTHORIZATION, v)))
    }

    /// What a request is called in messages. A token request by its endpoint and path: its query
    /// names the account and the scope, which its error says in words of its own.
    pub(super) fn request_id_of(&self, out: &Outgoing<'_>, url: &Url) -> RequestId {
        if !out.is_token() {
            return self.request_id(&out.method, url);
        }
        RequestId {
            host: format!("{} (token endpoint {})", self.host, authority(url)),
            method: out.method.to_string(),
            path: url.path().to_owned(),
        }
    }

    /// Learns the auth scheme from an answer of the registry's own host, and lets the requests
    /// waiting for it go: a challenge (true: send again with credentials, when `may_resend`), or
    /// an unauthenticated answer that got through (anonymous). A 5xx teaches nothing.
    fn learn_scheme(
        &self,
        response: &reqwest::Response,
        sent_auth: bool,
        may_resend: bool,
        scopes: &[Scope],
        gate: &Gate<'_>,
    ) -> bool {
        let status = response.status();
        let challenged = status == StatusCode::UNAUTHORIZED;
        if challenged {
            let values: Vec<&str> = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            let scheme = Scheme::from_challenges(&challenge::parse(values));
            let Some(scheme) = scheme.filter(|_| may_resend) else {
                return false;
            };
            if sent_auth {
                self.auth.rejected(scopes);
            }
            self.auth.learn(scheme);
        } else if sent_auth || status.is_server_error() {
            return false;
        } else {
            self.auth.learn_anonymous();
        }
        gate.lock().expect("gate lock").take();
        challenged
    }

    /// The HTTP request for one send of `out` to `url`.
    fn build(
        &self,
        out: &Outgoing<'_>,
        url: &Url,
        auth_header: Option<(HeaderName, HeaderValue)>,
        progress: &Progress,
    ) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(out.method.clone(), url.clone());
        if let Some(a) = out.accept {
            rb = rb.header(header::ACCEPT, a);
        }
        if let Some(ct) = out.content_type {
            rb = rb.header(header::CONTENT_TYPE, ct);
        }
        if let Some(cr) = &out.content_range {
            rb = rb.header(header::CONTENT_RANGE, cr);
        }
        if let Some(from) = out.range {
            rb = rb.header(header::RANGE, format!("bytes={from}-"));
        }
        if let Some((name, value)) = auth_header {
            rb = rb.header(name, value);
        }
        match &out.body {
            Body::Bytes(b) => {
                rb = rb
                    .header(header::CONTENT_LENGTH, b.len())
                    .body(body_of(b, progress));
            }
            Body::Streamed(slot) => {
                let body = slot
                    .lock()
                    .expect("body lock")
                    .take()
                    .expect("a streamed body is sent once: its request is never repeated");
                rb = rb
                    .header(header::CONTENT_LENGTH, body.len)
                    .body(streamed_body(body, progress));
            }
            Body::Empty if matches!(out.method, Method::POST | Method::PUT | Method::PATCH) => {
                rb = rb.header(header::CONTENT_LENGTH, 0);
            }
            Body::Empty => {}
        }
        rb
    }

    async fn read_answer(
        &self,
        out: &Outgoing<'_>,
        request: RequestId,
        response: reqwest::Response,
    ) -> Result<Attempt<(RequestId, Answer)>, RegistryError> {
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        if out.stream && status.is_success() {
            let answer = Answer {
                url,
                status,
                headers,
                body: Vec::new(),
                stream: Some(response),
            };
            return Ok(Attempt::Done((request, answer)));
        }
        let limit = if status.is_success() {
            out.body_limit
        } else {
            ERROR_BODY_LIMIT
        };
        let body = match read_limited(response, limit, self.transport.timeout, &request).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) if status.is_success() => {
                return Err(RegistryError::TooLarge {
                    request,
                    what: out.what,
                    limit,
                });
            }
            // An error answer's message is a courtesy: a huge one is left unread, and said so.
            Err(BodyError::TooLarge) => serde_json::json!({"errors": [{
                "message": format!("(the error body is larger than {ERROR_BODY_LIMIT} bytes; not read)")
            }]})
            .to_string()
            .into_bytes(),
            Err(BodyError::Read(e)) if out.retry.allows(Failure::Lost) || status.is_success() => {
                return failed(*e, None);
            }
            Err(BodyError::Read(_)) => Vec::new(),
        };
        let answer = Answer {
            url,
            status,
            headers,
            body,
            stream: None,
        };
        Ok(Attempt::Done((request, answer)))
    }
}
