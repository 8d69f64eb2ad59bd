//! Getting a Bearer token from the realm a registry's challenge names: the password grant (GET
//! with Basic credentials) or the OAuth2 refresh-token grant (identity tokens, ACR), through the
//! same request engine as every registry request (a token request is one of its request types),
//! with a cap on the answer's size.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderValue;

use super::auth::{Auth, Scope, Token, TokenAsk, scopes_display};
use super::client::RegistryClient;
use super::credentials::{Credential, CredentialSecret};
use super::engine::{Body, Outgoing};
use super::error::{RegistryError, RequestId, describe, error_entries};
use super::transport::{TransportConfig, authority};
use crate::secret::Secret;

/// The largest token response read (real ones are a few kilobytes).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 1 << 20;

impl Auth {
    /// The token request: the OAuth2 refresh-token grant for identity tokens, else a GET with
    /// Basic credentials (or none, for an anonymous token). `None` when the credentials cannot
    /// be sent in a header.
    fn token_request(
        &self,
        mut url: reqwest::Url,
        scopes: &[Scope],
        service: Option<&str>,
    ) -> Option<Outgoing<'static>> {
        if let Some(Credential {
            secret: CredentialSecret::IdentityToken(refresh),
            ..
        }) = &self.credential
        {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            form.append_pair("scope", &scopes_display(scopes));
            form.append_pair("client_id", "tagguard");
            form.append_pair("refresh_token", refresh.expose());
            let mut out = Outgoing::token(Method::POST, url, None, MAX_TOKEN_RESPONSE_BYTES);
            out.content_type = Some("application/x-www-form-urlencoded");
            out.body = Body::Bytes(Bytes::from(form.finish()));
            return Some(out);
        }
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
        let mut authorization = None;
        if let Some(Credential {
            username,
            secret: CredentialSecret::Password(p),
        }) = &self.credential
        {
            let mut h = HeaderValue::from_str(&format!(
                "Basic {}",
                B64.encode(format!("{username}:{}", p.expose()))
            ))
            .ok()?;
            h.set_sensitive(true);
            authorization = Some(h);
        }
        Some(Outgoing::token(
            Method::GET,
            url,
            authorization,
            MAX_TOKEN_RESPONSE_BYTES,
        ))
    }
}

impl RegistryClient {
    /// Fetches a token from the realm of the registry's challenge, through the engine (its
    /// limiter, redirects and retry policy: [`RetryClass::Token`](crate::retry::RetryClass)).
    pub(super) async fn fetch_token(
        &self,
        ask: TokenAsk,
        request: &RequestId,
    ) -> Result<Token, RegistryError> {
        let auth = &self.auth;
        let (scopes, realm, service) = (&ask.scopes[..], &ask.realm[..], ask.service.as_deref());
        let scope_text = scopes_display(scopes);
        let url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Malformed {
            request: request.clone(),
            detail: format!("the Bearer challenge's realm {realm:?} is not a URL: {e}"),
        })?;
        if !realm_allowed(&url, &self.transport) {
            return Err(RegistryError::InsecureScheme {
                request: request.clone(),
                target: realm.to_owned(),
            });
        }
        let out =
            auth.token_request(url, scopes, service)
                .ok_or_else(|| RegistryError::Malformed {
                    request: request.clone(),
                    detail: "credentials contain characters that cannot be sent in a header".into(),
                })?;
        log::debug!("{}: fetching a token for {scope_text}", auth.host);
        // Boxed: a token request is sent from inside the registry request that needs it.
        let (token_request, answer) = Box::pin(self.send(out)).await?;
        let status = answer.status().as_u16();
        if !answer.status().is_success() {
            return Err(RegistryError::Token {
                request: request.clone(),
                realm: realm.to_owned(),
                status,
                credentials: auth.source.clone(),
                scope: scope_text,
                detail: token_error_message(&answer.body),
                looked: auth.looked_note(),
                help: auth.help(status, scopes),
            });
        }
        let (value, lifetime) =
            parse_token_response(&answer.body).map_err(|detail| RegistryError::Malformed {
                request: token_request.clone(),
                detail: detail.into(),
            })?;
        // Renew a little early.
        let margin = (lifetime / 10).min(Duration::from_secs(10));
        log::debug!(
            "{token_request}: got a token for {scope_text}, valid {}s",
            lifetime.as_secs()
        );
        Ok(Token {
            value,
            fresh_until: Instant::now() + (lifetime - margin),
        })
    }
}

/// The token endpoint's own words for a refusal: the spec's error body, or the `details` /
/// `error_description` / `message` fields token servers use (Docker Hub: `{"details":
/// "incorrect username or password"}`). `: <words>` or empty.
pub fn token_error_message(body: &[u8]) -> String {
    let spec = describe(&error_entries(body));
    if !spec.is_empty() {
        return spec;
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return String::new();
    };
    ["details", "detail", "error_description", "message", "error"]
        .iter()
        .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
        .unwrap_or_default()
}

/// May credentials be sent to this token endpoint? Over HTTPS always; over plain HTTP only to a
/// host that may be spoken to over HTTP (loopback, or marked insecure). The realm comes from the
/// registry's challenge, so a registry (or whoever answers in its name) could otherwise send the
/// password in the clear to any host.
pub fn realm_allowed(realm: &reqwest::Url, transport: &TransportConfig) -> bool {
    match realm.scheme() {
        "https" => true,
        "http" => realm.host().is_some() && transport.allows_http(&authority(realm)),
        _ => false,
    }
}

/// The longest token lifetime believed; a server's `expires_in` beyond it is capped (a huge
/// value would overflow the clock, and no run of tagguard lasts that long anyway).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The token and its lifetime from a token endpoint's JSON answer: `token` or `access_token`
/// (the first non-empty), `expires_in` seconds (the spec's default is 60).
pub fn parse_token_response(body: &[u8]) -> Result<(Secret, Duration), &'static str> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let parsed: TokenResponse = serde_json::from_slice(body)
        .map_err(|_| "the token response is not JSON with a \"token\" or \"access_token\"")?;
    let value = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token.filter(|t| !t.is_empty()))
        .ok_or("the token response has neither \"token\" nor \"access_token\"")?;
    let lifetime =
        Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1)).min(MAX_TOKEN_LIFETIME);
    Ok((Secret::new(value), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_a_plain_http_realm_only_on_loopback_or_when_marked_insecure() {
        let t = TransportConfig::default();
        let ok = |u: &str, t: &TransportConfig| realm_allowed(&reqwest::Url::parse(u).unwrap(), t);
        assert!(ok("https://auth.example/token", &t));
        assert!(ok("http://127.0.0.1:5001/token", &t));
        assert!(ok("http://[::1]:5001/token", &t));
        assert!(ok("http://localhost/token", &t));
        assert!(!ok("http://auth.example/token", &t));
        assert!(!ok("http://auth.example:8080/token", &t));
        assert!(!ok("http://10.0.0.1/token", &t));
        assert!(!ok("ftp://auth.example/token", &t));
        assert!(!ok("file:///etc/passwd", &t));
        let marked = TransportConfig {
            insecure: vec!["auth.example".into()],
            ..TransportConfig::default()
        };
        assert!(ok("http://auth.example:8080/token", &marked));
        assert!(!ok("http://other.example/token", &marked));
    }

    #[test]
    fn token_endpoints_own_words() {
        assert_eq!(
            token_error_message(br#"{"details":"incorrect username or password"}"#),
            ": incorrect username or password"
        );
        assert_eq!(
            token_error_message(br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad"}]}"#),
            ": UNAUTHORIZED: bad"
        );
        assert_eq!(token_error_message(b"<html>"), "");
    }

    #[test]
    fn token_responses() {
        let (t, life) =
            parse_token_response(br#"{"token":"","access_token":"a","expires_in":300}"#).unwrap();
        assert_eq!((t.expose(), life), ("a", Duration::from_secs(300)));
        let (_, life) = parse_token_response(br#"{"token":"t"}"#).unwrap();
        assert_eq!(life, Duration::from_secs(60));
        assert!(parse_token_response(br#"{"token":""}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }

    /// A hostile or broken token server's `expires_in: u64::MAX` once overflowed `Instant + d`
    /// and panicked; it is capped now.
    #[test]
    fn a_huge_expires_in_is_capped_not_a_panic() {
        let (_, life) =
            parse_token_response(br#"{"token":"t","expires_in":18446744073709551615}"#).unwrap();
        assert_eq!(life, MAX_TOKEN_LIFETIME);
        let _ = std::time::Instant::now() + life;
    }
}
