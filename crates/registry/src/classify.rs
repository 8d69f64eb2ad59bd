//! What went wrong below HTTP, in words: TLS (and which CAs were trusted), a plain-HTTP answer
//! to HTTPS, a refused connection, a name that does not resolve, a timeout, a reset.

use std::time::Duration;

use super::error::{RegistryError, RequestId};

/// A failure while reading a body: a timeout, or the connection reset or closed early.
pub(crate) fn classify_body(
    e: reqwest::Error,
    request: &RequestId,
    idle: Duration,
) -> RegistryError {
    if e.is_timeout() {
        return RegistryError::Timeout {
            request: request.clone(),
            after: idle,
        };
    }
    let chain = chain_of(&e);
    RegistryError::Http {
        request: request.clone(),
        detail: format!(
            "reading the body: {}",
            chain.last().cloned().unwrap_or_default()
        ),
        source: Some(e),
    }
}

fn chain_of(e: &reqwest::Error) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        cur = err.source();
    }
    chain.dedup();
    chain
}

/// A rejected certificate in words (the `server`'s: tagguard sends none), from rustls' stable
/// text (`invalid peer certificate: UnknownIssuer`); other TLS errors as rustls says them.
fn tls_words(detail: String, server: &str) -> String {
    let Some(cert) = detail.split("invalid peer certificate: ").nth(1) else {
        return detail;
    };
    let has = |words: &[&str]| words.iter().any(|w| cert.contains(w));
    let why = if has(&["UnknownIssuer"]) {
        "is signed by a CA that is not trusted here"
    } else if has(&["NotValidYet", "not valid yet"]) {
        "is not valid yet"
    } else if has(&["Expired", "expired"]) {
        "has expired"
    } else if has(&["NotValidForName", "not valid for name"]) {
        "is not valid for this host name"
    } else if has(&["Revoked", "revoked"]) {
        "is revoked"
    } else {
        "was rejected"
    };
    format!("the {server}'s certificate {why} ({cert})")
}

/// Names what went wrong below HTTP: TLS (and which CAs were trusted), a plain-HTTP answer to
/// HTTPS, refused, DNS, timeout. `server` is what should have answered (`registry`, `API`, …).
pub(crate) fn classify(
    e: reqwest::Error,
    request: &RequestId,
    server: &str,
    trust: &str,
    idle: Duration,
) -> RegistryError {
    let chain = chain_of(&e);
    let mut tls = None;
    let mut refused = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            tls = Some(r.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                tls = Some(r.to_string());
            }
        }
        cur = err.source();
    }
    // rustls errors can arrive boxed where downcasting cannot reach them; their text is stable.
    if tls.is_none() {
        tls = chain
            .iter()
            .find(|c| {
                c.contains("invalid peer certificate")
                    || c.contains("received fatal alert")
                    || c.contains("InvalidContentType")
            })
            .cloned();
    }
    let innermost = chain.last().cloned().unwrap_or_default();
    if let Some(detail) = tls.map(|t| tls_words(t, server)) {
        // A plain-HTTP server answers a TLS ClientHello with `HTTP/1.1 400 …`, which rustls
        // reads as a record of an invalid content type.
        if detail.contains("InvalidContentType") || detail.contains("corrupt message") {
            let registry = request
                .host
                .split(' ')
                .next()
                .unwrap_or(&request.host)
                .to_owned();
            return RegistryError::PlainHttp {
                request: request.clone(),
                registry,
                detail,
                source: Some(e),
            };
        }
        return RegistryError::Tls {
            request: request.clone(),
            ca: trust.to_owned(),
            detail,
            source: Some(e),
        };
    }
    // A connection that could not be opened in time: nothing was sent.
    if e.is_connect() && e.is_timeout() {
        return RegistryError::Connect {
            request: request.clone(),
            detail: "timed out opening the connection (--connect-timeout)".into(),
            source: Some(e),
        };
    }
    if e.is_timeout() {
        return RegistryError::Timeout {
            request: request.clone(),
            after: idle,
        };
    }
    if refused {
        return RegistryError::Connect {
            request: request.clone(),
            detail: format!("connection refused (is the {server} listening there?)"),
            source: Some(e),
        };
    }
    if e.is_connect() {
        let detail = if chain.iter().any(|c| c.contains("dns error")) {
            format!("the host name does not resolve ({innermost})")
        } else {
            innermost
        };
        return RegistryError::Connect {
            request: request.clone(),
            detail,
            source: Some(e),
        };
    }
    RegistryError::Http {
        request: request.clone(),
        detail: chain.into_iter().skip(1).collect::<Vec<_>>().join(": "),
        source: Some(e),
    }
}
