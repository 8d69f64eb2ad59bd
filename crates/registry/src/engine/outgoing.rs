//! The request types of the engine: what one logical request is ([`Outgoing`]), whom it is for
//! ([`Endpoint`]: the registry, its token endpoint, a web API beside it) and what it carries
//! ([`Body`]). Each type's constructor sets its retry class, its body bound and its credential;
//! the engine (`engine.rs`) sends them all the same way.

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tokio::sync::mpsc;

use super::ERROR_BODY_LIMIT;
use crate::auth::Scope;
use crate::retry::RetryClass;
use crate::silence::Streamed;

pub(crate) struct Outgoing<'a> {
    pub method: Method,
    pub url: Url,
    pub scopes: &'a [Scope],
    pub accept: Option<&'static str>,
    pub content_type: Option<&'a str>,
    pub content_range: Option<String>,
    pub range: Option<u64>,
    pub body: Body,
    pub retry: RetryClass,
    /// The most of a successful answer's body that is read; a larger one is an error.
    pub body_limit: usize,
    /// What the body is, for the message when it is over the limit.
    pub what: &'static str,
    /// Leave a successful answer's body unread, for the caller to stream.
    pub stream: bool,
    pub endpoint: Endpoint,
}

/// Whom a request is for.
pub(crate) enum Endpoint {
    /// The registry: its `Authorization` comes from the token cache, and its first 401 teaches
    /// the auth scheme.
    Registry,
    /// The token endpoint a Bearer challenge names: its own credentials (Basic, or none), for the
    /// realm alone (its redirects are not followed).
    Token { authorization: Option<HeaderValue> },
    /// A web API beside registries (GitHub's, GitLab's), whose host the client is for: a fixed
    /// credential header (marked sensitive), sent to that host alone and never along a redirect
    /// to another. No auth scheme is learned; a 401 is the answer.
    Web {
        credential: Option<(HeaderName, HeaderValue)>,
    },
}

impl Endpoint {
    /// What answers there, in the words of an error about it.
    pub fn server(&self) -> &'static str {
        match self {
            Endpoint::Registry => "registry",
            Endpoint::Token { .. } => "token service",
            Endpoint::Web { .. } => "API",
        }
    }
}

impl<'a> Outgoing<'a> {
    pub fn new(method: Method, url: Url, scopes: &'a [Scope]) -> Self {
        let retry = match method {
            Method::GET | Method::HEAD => RetryClass::Always,
            Method::PUT => RetryClass::IfUnprocessed,
            _ => RetryClass::Never,
        };
        Outgoing {
            method,
            url,
            scopes,
            accept: None,
            content_type: None,
            content_range: None,
            range: None,
            body: Body::Empty,
            retry,
            body_limit: ERROR_BODY_LIMIT,
            what: "the response body",
            stream: false,
            endpoint: Endpoint::Registry,
        }
    }

    /// A request to a token endpoint at `url`, with its own credentials, answered with at most
    /// `limit` bytes of token response.
    pub fn token(
        method: Method,
        url: Url,
        authorization: Option<HeaderValue>,
        limit: usize,
    ) -> Self {
        Outgoing {
            retry: RetryClass::Token,
            body_limit: limit,
            what: "the token response",
            endpoint: Endpoint::Token { authorization },
            ..Outgoing::new(method, url, &[])
        }
    }

    /// A request to a web API at `url` (on the host of the client that sends it), with its
    /// credential header, retried as `retry` allows, answered with at most `limit` bytes.
    pub fn web(
        method: Method,
        url: Url,
        credential: Option<(HeaderName, HeaderValue)>,
        retry: RetryClass,
        limit: usize,
    ) -> Self {
        Outgoing {
            retry,
            body_limit: limit,
            what: "the API's answer",
            endpoint: Endpoint::Web { credential },
            ..Outgoing::new(method, url, &[])
        }
    }

    pub fn is_token(&self) -> bool {
        matches!(self.endpoint, Endpoint::Token { .. })
    }

    /// Is this a request to the registry itself, whose answers teach its auth scheme?
    pub fn is_registry(&self) -> bool {
        matches!(self.endpoint, Endpoint::Registry)
    }

    /// Are its redirects followed? A GET or HEAD's, except a token request's: the realm is where
    /// the registry said its tokens come from, and a token from elsewhere is none it vouched for
    /// (the redirect is the answer, and its error names the endpoint and its 3xx).
    pub fn follows_redirects(&self) -> bool {
        !self.is_token() && matches!(self.method, Method::GET | Method::HEAD)
    }

    pub fn retry(mut self, class: RetryClass) -> Self {
        self.retry = class;
        self
    }

    /// A body streamed from `pieces` as they arrive: sent once, never repeated (the bytes are
    /// not kept), so the caller starts over instead.
    pub fn streamed(mut self, pieces: mpsc::Receiver<Bytes>, len: u64) -> Self {
        self.body = Body::Streamed(std::sync::Mutex::new(Some(Streamed { pieces, len })));
        self.retry = RetryClass::Once;
        self
    }
}

/// What a request carries.
pub(crate) enum Body {
    Empty,
    /// In memory, shared: a retry re-sends it without a copy.
    Bytes(Bytes),
    /// Taken from a channel as its source delivers it, by the one send of the request.
    Streamed(std::sync::Mutex<Option<Streamed>>),
}

impl Body {
    pub fn is_streamed(&self) -> bool {
        matches!(self, Body::Streamed(_))
    }
}
