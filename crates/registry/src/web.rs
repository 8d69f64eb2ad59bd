//! Web APIs beside registries (GitHub's REST API for packages and pull requests, GitLab's API):
//! a [`WebClient`] for one API, whose requests are a request type of the engine
//! ([`Outgoing::web`]), sent by an engine of its own for the API's host
//! ([`RegistryClient::send`]): the limiter, the deadline of silence, the one retry policy, the
//! same transport (TLS, CAs, plain HTTP only where allowed), bounded bodies, and redirects
//! followed with the credential only for the API's own host. The token is a [`Secret`], sent in
//! a header marked sensitive and never in a URL, so no error names it. Lists are read page by
//! page (`Link: rel="next"`, else page numbers) up to a page limit.

use std::collections::HashSet;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::Value;

use super::client::RegistryClient;
use super::engine::Outgoing;
use super::error::describe_body;
use super::retry::RetryClass;
use super::secret::Secret;
use super::tags::next_link;
use super::transport::TransportConfig;

/// Items asked for per page (the most GitHub and GitLab give).
pub(crate) const PER_PAGE: usize = 100;
/// The largest page or answer read.
pub(crate) const MAX_PAGE_BYTES: usize = 8 << 20;

/// How a token is sent.
#[derive(Debug, Clone)]
pub enum WebToken {
    /// `Authorization: Bearer <token>` (GitHub).
    Bearer(Secret),
    /// A header of the API's own (GitLab's `PRIVATE-TOKEN`, `JOB-TOKEN`).
    Header(&'static str, Secret),
}

impl WebToken {
    fn header(&self) -> Result<(HeaderName, HeaderValue), String> {
        let (name, value) = match self {
            WebToken::Bearer(t) => (header::AUTHORIZATION, format!("Bearer {}", t.expose())),
            WebToken::Header(name, t) => (
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?,
                t.expose().to_owned(),
            ),
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "the token holds characters a header cannot carry".to_owned())?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WebError {
    #[error("web API {base}: {detail}")]
    #[diagnostic(
        code(tagguard::web::setup),
        help("check the API's address (e.g. GITHUB_API_URL, CI_API_V4_URL) and the CA options")
    )]
    Setup { base: String, detail: String },
    #[error("{method} {url}: {detail}")]
    #[diagnostic(
        code(tagguard::web::request),
        help(
            "the API could not be reached or stopped answering; check its address and that it is reachable from here, then try again"
        )
    )]
    Failed {
        method: String,
        url: String,
        detail: String,
    },
    #[error("{method} {url} answered {status}{detail}")]
    #[diagnostic(code(tagguard::web::status), help("{help}"))]
    Status {
        method: String,
        url: String,
        status: u16,
        /// `: <the API's message>` or empty.
        detail: String,
        help: String,
    },
    #[error("{method} {url}: {detail}")]
    #[diagnostic(
        code(tagguard::web::malformed),
        help(
            "the API answered something other than what it documents; check its address (a proxy or a login page in front answers like this)"
        )
    )]
    Malformed {
        method: String,
        url: String,
        detail: String,
    },
}

impl WebError {
    /// The status the API answered, for an answer that was not a success.
    pub fn status(&self) -> Option<u16> {
        match self {
            WebError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The same error with another help line (the caller knows which permission is missing).
    pub fn with_help(mut self, text: impl Into<String>) -> Self {
        if let WebError::Status { help, .. } = &mut self {
            *help = text.into();
        }
        self
    }
}

/// What to do about an answer's status, when the caller says nothing more precise.
fn default_help(status: u16) -> &'static str {
    match status {
        401 => "the API refused the token: check that it is set and has not expired",
        403 => {
            "the token lacks a permission this needs (see the message), or a rate limit was hit: grant it, or wait and try again"
        }
        404 => {
            "nothing at this address: check the names in it (a private resource also answers 404 to a token that may not see it)"
        }
        429 | 500..=599 => "the API is busy or failing: try again later",
        _ => "the API refused the request: see its message",
    }
}

/// An answer of the API, read whole (up to the bound).
#[derive(Debug)]
pub struct WebAnswer {
    pub method: Method,
    /// Where the answer came from (after redirects).
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl WebAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, WebError> {
        serde_json::from_slice(&self.body).map_err(|e| WebError::Malformed {
            method: self.method.to_string(),
            url: self.url.to_string(),
            detail: format!("the answer is not JSON: {e}"),
        })
    }

    /// The error of an answer that is not a success: the status and the API's own message.
    pub fn error(&self) -> WebError {
        let message = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned));
        let detail = match message {
            Some(m) => describe_body(m.as_bytes()),
            None => describe_body(&self.body),
        };
        WebError::Status {
            method: self.method.to_string(),
            url: self.url.to_string(),
            status: self.status,
            detail,
            help: default_help(self.status).to_owned(),
        }
    }
}

/// One path segment, percent-encoded (a nested package name `a/b` is `a%2Fb`).
pub fn encode_segment(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A client for one web API.
pub struct WebClient {
    /// The API's base URL, without a trailing slash (`https://api.github.com`,
    /// `https://gitlab.example.com/api/v4`).
    base: String,
    /// The engine for the API's host: its connection pool, limiter and deadlines.
    engine: RegistryClient,
    credential: Option<(HeaderName, HeaderValue)>,
    accept: Option<&'static str>,
}

impl WebClient {
    /// A client for the API at `base`. No request is sent.
    pub fn new(
        base: &str,
        token: Option<&WebToken>,
        transport: &TransportConfig,
    ) -> Result<WebClient, WebError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        let setup = |detail: String| WebError::Setup {
            base: base.clone(),
            detail,
        };
        let mut url = Url::parse(&base).map_err(|e| WebError::Setup {
            // Shown unless it may hold credentials (`user:token@…` that did not parse).
            base: if base.contains('@') {
                "(the address)".into()
            } else {
                base.clone()
            },
            detail: format!("not a URL: {e}"),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            return Err(WebError::Setup {
                base: url.to_string(),
                detail: "the address holds credentials; give the token in its variable instead"
                    .into(),
            });
        }
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(setup("not an http(s) URL with a host".into()));
        }
        let engine = RegistryClient::for_web(&url, transport).map_err(|e| setup(e.to_string()))?;
        let credential = token.map(WebToken::header).transpose().map_err(setup)?;
        Ok(WebClient {
            base,
            engine,
            credential,
            accept: None,
        })
    }

    /// Every request asks for this media type (GitHub: `application/vnd.github+json`).
    pub fn accept(mut self, media_type: &'static str) -> Self {
        self.accept = Some(media_type);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn has_token(&self) -> bool {
        self.credential.is_some()
    }

    /// `path` (with its query) under the base.
    pub fn url(&self, path: &str) -> Result<Url, WebError> {
        Url::parse(&format!("{}/{}", self.base, path.trim_start_matches('/'))).map_err(|e| {
            WebError::Setup {
                base: self.base.clone(),
                detail: format!("cannot make a URL of {path:?}: {e}"),
            }
        })
    }

    /// `GET path`: the answer, whatever its status.
    pub async fn get(&self, path: &str) -> Result<WebAnswer, WebError> {
        let url = self.url(path)?;
        self.request(Method::GET, url, RetryClass::Always).await
    }

    /// `DELETE path`: the answer, whatever its status. Retried only when the API provably did
    /// not process it (429, 503, no connection); a lost answer is the caller's to settle (a
    /// repeat of a delete that happened answers 404).
    pub async fn delete(&self, path: &str) -> Result<WebAnswer, WebError> {
        let url = self.url(path)?;
        self.request(Method::DELETE, url, RetryClass::IfUnprocessed)
            .await
    }

    /// Every item of the JSON list at `path`, page by page: along `Link: rel="next"` when the
    /// API sends one, else by page number while pages come full; at most `max_pages` pages.
    pub async fn list(&self, path: &str, max_pages: usize) -> Result<Vec<Value>, WebError> {
        let first = self.url(path)?;
        let mut url = with_page(&first, 1);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for page in 1..=max_pages {
            seen.insert(url.clone());
            let answer = self
                .request(Method::GET, url.clone(), RetryClass::Always)
                .await?;
            if !answer.is_success() {
                return Err(answer.error());
            }
            let malformed = |detail: String| WebError::Malformed {
                method: "GET".into(),
                url: answer.url.to_string(),
                detail,
            };
            let Value::Array(items) = answer.json()? else {
                return Err(malformed("the answer is not a JSON list".into()));
            };
            let full = items.len() >= PER_PAGE;
            out.extend(items);
            let next = match next_link(&answer.headers) {
                Some(link) => Some(
                    answer
                        .url
                        .join(&link)
                        .map_err(|e| malformed(format!("unusable Link header: {e}")))?,
                ),
                None if full => Some(with_page(&first, page + 1)),
                None => None,
            };
            let Some(next) = next else {
                return Ok(out);
            };
            if seen.contains(&next) {
                return Err(malformed(
                    "the Link header points back to a page already read".into(),
                ));
            }
            url = next;
        }
        Err(WebError::Malformed {
            method: "GET".into(),
            url: first.to_string(),
            detail: format!("the list goes on past {max_pages} pages (the most tagguard reads)"),
        })
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        retry: RetryClass,
    ) -> Result<WebAnswer, WebError> {
        let mut out = Outgoing::web(
            method.clone(),
            url.clone(),
            self.credential.clone(),
            retry,
            MAX_PAGE_BYTES,
        );
        out.accept = self.accept;
        let (_, answer) = self.engine.send(out).await.map_err(|e| WebError::Failed {
            method: method.to_string(),
            url: url.to_string(),
            detail: e.cause(),
        })?;
        Ok(WebAnswer {
            method,
            url: answer.url,
            status: answer.status.as_u16(),
            headers: answer.headers,
            body: answer.body,
        })
    }
}

/// `url` asking for page `page` of [`PER_PAGE`] items (any `page`/`per_page` it had replaced).
fn with_page(url: &Url, page: usize) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("per_page", &PER_PAGE.to_string())
        .append_pair("page", &page.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_asked_for_by_number_keeping_the_query() {
        let url = Url::parse("https://api.example/repos/a/b/pulls?state=open&page=9").unwrap();
        assert_eq!(
            with_page(&url, 2).as_str(),
            "https://api.example/repos/a/b/pulls?state=open&per_page=100&page=2"
        );
    }

    #[test]
    fn nested_names_are_one_segment() {
        assert_eq!(encode_segment("team/app"), "team%2Fapp");
        assert_eq!(encode_segment("app"), "app");
        assert_eq!(encode_segment("a b"), "a%20b");
    }

    #[test]
    fn tokens_travel_in_sensitive_headers_and_never_print() {
        let t = WebToken::Bearer(Secret::new("ghp_s3cret"));
        let (name, value) = t.header().unwrap();
        assert_eq!(name, header::AUTHORIZATION);
        assert!(value.is_sensitive());
        assert!(!format!("{t:?}").contains("s3cret"));
        let (name, _) = WebToken::Header("PRIVATE-TOKEN", Secret::new("x"))
            .header()
            .unwrap();
        assert_eq!(name.as_str(), "private-token");
        let bad = WebToken::Bearer(Secret::new("a\nb")).header().unwrap_err();
        assert!(!bad.contains("a\nb"), "{bad}");
    }

    #[test]
    fn errors_name_the_method_and_url_and_say_what_to_do() {
        let answer = WebAnswer {
            method: Method::DELETE,
            url: Url::parse("https://api.example/orgs/acme/packages/container/app/versions/7")
                .unwrap(),
            status: 403,
            headers: HeaderMap::new(),
            body: br#"{"message":"Must have admin rights to Repository.","documentation_url":"x"}"#
                .to_vec(),
        };
        let e = answer.error();
        assert_eq!(
            e.to_string(),
            "DELETE https://api.example/orgs/acme/packages/container/app/versions/7 answered 403: Must have admin rights to Repository."
        );
        assert_eq!(e.status(), Some(403));
        let e = e.with_help("grant packages: write");
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert_eq!(help, "grant packages: write");
    }

    #[test]
    fn a_base_with_credentials_is_refused_without_echoing_them() {
        let e = WebClient::new(
            "https://user:hunter2@api.example",
            None,
            &TransportConfig::default(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("holds credentials"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
