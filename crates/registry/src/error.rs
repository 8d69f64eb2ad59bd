//! Registry errors. Each names the registry host and the request (method + path), then the cause,
//! and carries a stable diagnostic code (`tagguard::registry::…`) and a help line saying what to
//! do next.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::credentials::{CredentialError, CredentialSource};
use super::digest::Digest;
use super::retry::unprocessed_status;

/// The request an error is about: `registry ghcr.io: HEAD /v2/acme/app/manifests/1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    pub host: String,
    pub method: String,
    /// Path and query (never credentials: those travel in headers and bodies only).
    pub path: String,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry {}: {} {}", self.host, self.method, self.path)
    }
}

/// What became of a write that failed: whether the registry may have applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFate {
    /// The registry provably did not apply it: it turned the request away (429, 503, a 4xx that
    /// is not a refusal), or the request never left (no connection, no credentials).
    NotApplied,
    /// The registry's own refusal (its immutability setting, a lock, a protected tag).
    Refused,
    /// The request may have been processed: another 5xx, a reset or a timeout after sending.
    Unknown,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error("{request}: could not connect: {detail}")]
    #[diagnostic(
        code(tagguard::registry::connect),
        help("check the registry host and port, and that it is reachable from here")
    )]
    Connect {
        request: RequestId,
        detail: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error(
        "{request}: TLS failed: {detail} (trusted CAs: {ca}); pass the registry's CA certificate with \
         --ca-file FILE, or --insecure-registry HOST for a plain-HTTP registry"
    )]
    #[diagnostic(
        code(tagguard::registry::tls),
        help(
            "pass the registry's CA certificate with --ca-file FILE, or --insecure-registry HOST \
             for a plain-HTTP registry"
        )
    )]
    Tls {
        request: RequestId,
        ca: String,
        detail: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// An HTTPS request was answered in plain HTTP: the registry does not speak TLS there.
    #[error(
        "{request}: the registry answered in plain HTTP to an HTTPS request ({detail}); \
         if {registry} is a plain-HTTP registry, pass --insecure-registry {registry}"
    )]
    #[diagnostic(
        code(tagguard::registry::plain_http),
        help(
            "if {registry} serves plain HTTP (a docker-in-docker `registry:5000`, a registry on \
             a private network), pass --insecure-registry {registry}"
        )
    )]
    PlainHttp {
        request: RequestId,
        registry: String,
        detail: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error(
        "{request}: timed out: nothing moved for {}s (--timeout; --connect-timeout while connecting)",
        .after.as_secs_f32()
    )]
    #[diagnostic(
        code(tagguard::registry::timeout),
        help(
            "the registry stopped answering; try again later, or raise --timeout if it is known \
             to pause for long"
        )
    )]
    Timeout { request: RequestId, after: Duration },
    /// Not sent: an earlier request found the registry not answering at all.
    #[error("{request}: not sent: the registry stopped answering earlier in this run ({first})")]
    #[diagnostic(
        code(tagguard::registry::timeout),
        help(
            "the registry stopped answering; try again later, or raise --timeout if it is known \
             to pause for long"
        )
    )]
    Stalled { request: RequestId, first: String },
    #[error("{request}: {detail}")]
    #[diagnostic(
        code(tagguard::registry::connection),
        help("the connection broke; this is usually passing, try again")
    )]
    Http {
        request: RequestId,
        detail: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error(
        "{request}: {status}: not allowed with credentials from {credentials}, asking for scope {scope:?}{detail}{looked}"
    )]
    #[diagnostic(code(tagguard::registry::unauthorized), help("{help}"))]
    Denied {
        request: RequestId,
        status: u16,
        credentials: CredentialSource,
        scope: String,
        /// `: <registry's message>` or empty.
        detail: String,
        /// `; tagguard looked for credentials in: …` when none were found, else empty.
        looked: String,
        help: String,
    },
    #[error(
        "{request}: token endpoint {realm} answered {status} for credentials from {credentials} and scope {scope:?}{detail}{looked}"
    )]
    #[diagnostic(code(tagguard::registry::token), help("{help}"))]
    Token {
        request: RequestId,
        realm: String,
        status: u16,
        credentials: CredentialSource,
        scope: String,
        /// `: <the endpoint's own words>` or empty.
        detail: String,
        /// `; tagguard looked for credentials in: …` when none were found, else empty.
        looked: String,
        help: String,
    },
    /// This run already failed to get credentials accepted for this scope; it is not asked
    /// again. Said as the first refusal was (which names the registry, the request, the
    /// credentials' source and the scope), not as a chain of requests.
    #[error("{first}")]
    #[diagnostic(code(tagguard::registry::unauthorized), help("{help}"))]
    DeniedBefore {
        request: RequestId,
        scope: String,
        /// The first failure, as it was reported.
        first: String,
        help: String,
    },
    #[error("{request}: repository {repository:?} does not exist")]
    #[diagnostic(
        code(tagguard::registry::unknown_repository),
        help("check the image name (registry host, repository path and letter case)")
    )]
    UnknownRepository {
        request: RequestId,
        repository: String,
    },
    /// The registry itself refuses the write: its immutability setting, a lock, a protected tag.
    #[error(
        "{request}: the registry refuses to {} {}: {rule} ({status} {code}: {message})",
        refused_verb(&.request.method),
        refused_target(.repository, .tag.as_deref())
    )]
    #[diagnostic(
        code(tagguard::registry::refused),
        help(
            "this is the registry's own protection ({rule}), not a credentials problem: push \
             under a new tag, or change the setting at the registry"
        )
    )]
    Refused {
        request: RequestId,
        repository: String,
        tag: Option<String>,
        /// How the registry said it, from the table in `refusal.rs` (e.g. "Harbor immutability rule").
        rule: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{request}: unexpected status {status}{detail}")]
    #[diagnostic(
        code(tagguard::registry::status),
        help("the registry answered something tagguard does not expect here; see its message")
    )]
    Status {
        request: RequestId,
        status: u16,
        detail: String,
    },
    #[error("{request}: malformed response: {detail}")]
    #[diagnostic(
        code(tagguard::registry::malformed),
        help(
            "the registry (or a proxy in front of it) answered something that is not the OCI API"
        )
    )]
    Malformed { request: RequestId, detail: String },
    #[error("{request}: {what} is larger than the limit of {limit} bytes")]
    #[diagnostic(
        code(tagguard::registry::too_large),
        help(
            "a registry does not send this much here; check the registry (or the proxy in front)"
        )
    )]
    TooLarge {
        request: RequestId,
        what: &'static str,
        limit: usize,
    },
    #[error("{request}: {detail}")]
    #[diagnostic(
        code(tagguard::registry::pagination),
        help("the registry's tag list does not end; check the registry (or the proxy in front)")
    )]
    Pagination { request: RequestId, detail: String },
    #[error("{request}: content does not match its digest: expected {expected}, got {actual}")]
    #[diagnostic(
        code(tagguard::registry::digest_mismatch),
        help(
            "the registry or something between served other bytes than asked for; do not trust it"
        )
    )]
    DigestMismatch {
        request: RequestId,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{request}: refusing plain HTTP to {target}: only loopback hosts and registries given with \
         --insecure-registry may use HTTP"
    )]
    #[diagnostic(
        code(tagguard::registry::insecure_scheme),
        help(
            "if that host really is a plain-HTTP registry you trust, pass --insecure-registry HOST"
        )
    )]
    InsecureScheme { request: RequestId, target: String },
    #[error("registry {host}: could not use CA file {path}: {source}")]
    #[diagnostic(
        code(tagguard::registry::ca_file),
        help("--ca-file takes a PEM file with one or more CA certificates")
    )]
    CaFile {
        host: String,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This run could not set up a client for the host earlier (its credentials could not be
    /// read); the credential helper is not started again.
    #[error("{first} (credentials are looked up once per registry and run)")]
    #[diagnostic(
        code(tagguard::registry::credentials),
        help(
            "fix what the first message names; tagguard does not ask a failing credential helper twice in one run"
        )
    )]
    ClientBefore { host: String, first: String },
    #[error("registry {host}: {source}")]
    #[diagnostic(code(tagguard::registry::credentials))]
    Credentials {
        host: String,
        #[source]
        #[diagnostic_source]
        source: CredentialError,
    },
}

/// What the refused request would have done: a delete, or a write over what is there.
fn refused_verb(method: &str) -> &'static str {
    if method.eq_ignore_ascii_case("DELETE") {
        "delete"
    } else {
        "overwrite"
    }
}

fn refused_target(repository: &str, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("tag {tag:?} of {repository}"),
        None => format!("content of {repository}"),
    }
}

impl RegistryError {
    /// The request this error is about, when it is about one.
    pub(crate) fn request(&self) -> Option<&RequestId> {
        use RegistryError::*;
        match self {
            Connect { request, .. }
            | Tls { request, .. }
            | PlainHttp { request, .. }
            | Timeout { request, .. }
            | Stalled { request, .. }
            | Http { request, .. }
            | Denied { request, .. }
            | Token { request, .. }
            | DeniedBefore { request, .. }
            | UnknownRepository { request, .. }
            | Refused { request, .. }
            | Status { request, .. }
            | Malformed { request, .. }
            | TooLarge { request, .. }
            | Pagination { request, .. }
            | DigestMismatch { request, .. }
            | InsecureScheme { request, .. } => Some(request),
            CaFile { .. } | ClientBefore { .. } | Credentials { .. } => None,
        }
    }

    /// What went wrong, without the request it is about, for a caller that names the request
    /// in words of its own (the web client: the method and the URL). An error not said as
    /// "request: cause" (one said as an earlier one was, one about no request) is said whole.
    pub(crate) fn cause(&self) -> String {
        let text = self.to_string();
        let Some(request) = self.request() else {
            return text;
        };
        match text.strip_prefix(&format!("{request}: ")) {
            Some(cause) => cause.to_owned(),
            None => text,
        }
    }

    /// Is this the registry's own refusal of a write (immutability, lock, protected tag)?
    pub fn is_refusal(&self) -> bool {
        matches!(self, RegistryError::Refused { .. })
    }

    /// Whether a write that failed with this error may have been applied by the registry.
    pub fn write_fate(&self) -> WriteFate {
        use RegistryError::*;
        match self {
            Refused { .. } => WriteFate::Refused,
            Status { status, .. } if unprocessed_status(*status) => WriteFate::NotApplied,
            Status { status, .. } if (400..500).contains(status) => WriteFate::NotApplied,
            Status { .. } => WriteFate::Unknown,
            // Nothing was sent, or the registry turned the request away before processing it.
            Connect { .. }
            | Tls { .. }
            | PlainHttp { .. }
            | Denied { .. }
            | Token { .. }
            | DeniedBefore { .. }
            | UnknownRepository { .. }
            | InsecureScheme { .. }
            | CaFile { .. }
            | Credentials { .. }
            | ClientBefore { .. }
            | Stalled { .. } => WriteFate::NotApplied,
            // Sent, and the answer is lost or cannot be trusted.
            Timeout { .. }
            | Http { .. }
            | Malformed { .. }
            | TooLarge { .. }
            | Pagination { .. }
            | DigestMismatch { .. } => WriteFate::Unknown,
        }
    }
}

/// One entry of the distribution spec's error body `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    /// Free-form: a string, or any JSON (distribution puts the storage driver's error here,
    /// e.g. "no space left on device").
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// The most of a registry's own words (an error entry's detail, or a body that is not the
/// spec's JSON) that goes into a message.
pub const WORDS_LIMIT: usize = 300;

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

/// The error entries of a response body; empty when the body is not the spec's JSON.
pub fn error_entries(body: &[u8]) -> Vec<ErrorEntry> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
}

/// `: CODE: message (detail); CODE: message` from an error body, for appending to an error;
/// empty if none. Each detail is cut at [`WORDS_LIMIT`] characters and redacted.
pub fn describe(entries: &[ErrorEntry]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|e| {
            let head = match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            };
            let detail = match &e.detail {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.trim().to_owned(),
                Some(v) => v.to_string(),
            };
            if detail.is_empty() || head.contains(&detail) {
                head
            } else {
                format!("{head} ({})", words(&detail))
            }
        })
        .collect();
    format!(": {}", parts.join("; "))
}

/// What an error answer's body says: the spec's entries ([`describe`]), or else the first
/// [`WORDS_LIMIT`] characters of a body in plain text (a proxy's or a registry's own words),
/// redacted; empty for no body, or one that is not text.
pub fn describe_body(body: &[u8]) -> String {
    let entries = error_entries(body);
    if !entries.is_empty() {
        return describe(&entries);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return String::new();
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() || text.starts_with('<') {
        // Empty, or an HTML error page: nothing worth a line.
        return String::new();
    }
    format!(": {}", words(&text))
}

/// A registry's own words, cut at [`WORDS_LIMIT`] characters, with anything that looks like a
/// credential replaced: what follows `Bearer`/`Basic`, a `password=`/`token=`-like value, and
/// JWTs.
fn words(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut hide_next = false;
    for word in text.split(' ') {
        if hide_next {
            out.push("[redacted]".to_owned());
            hide_next = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        hide_next = matches!(lower.trim_matches('"'), "bearer" | "basic");
        let secret_pair = ["password", "passwd", "secret", "token", "authorization"]
            .iter()
            .any(|k| lower.contains(&format!("{k}=")) || lower.contains(&format!("{k}\":")));
        let jwt = word.contains("eyJ");
        out.push(if secret_pair || jwt {
            "[redacted]".to_owned()
        } else {
            word.to_owned()
        });
    }
    let text = out.join(" ");
    if text.chars().count() <= WORDS_LIMIT {
        return text;
    }
    let cut: String = text.chars().take(WORDS_LIMIT).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RequestId {
        RequestId {
            host: "r.example".into(),
            method: "PUT".into(),
            path: "/v2/app/manifests/1.0".into(),
        }
    }

    #[test]
    fn write_fates() {
        let status = |status| RegistryError::Status {
            request: request(),
            status,
            detail: String::new(),
        };
        assert_eq!(status(429).write_fate(), WriteFate::NotApplied);
        assert_eq!(status(503).write_fate(), WriteFate::NotApplied);
        assert_eq!(status(400).write_fate(), WriteFate::NotApplied);
        assert_eq!(status(500).write_fate(), WriteFate::Unknown);
        assert_eq!(status(502).write_fate(), WriteFate::Unknown);
        let timeout = RegistryError::Timeout {
            request: request(),
            after: Duration::from_secs(1),
        };
        assert_eq!(timeout.write_fate(), WriteFate::Unknown);
        let refused = RegistryError::Refused {
            request: request(),
            repository: "app".into(),
            tag: Some("1.0".into()),
            rule: "Quay immutable tag",
            status: 409,
            code: "TAG_IMMUTABLE".into(),
            message: "tag is immutable".into(),
        };
        assert!(refused.is_refusal() && !timeout.is_refusal());
        assert_eq!(refused.write_fate(), WriteFate::Refused);
        assert!(
            refused
                .to_string()
                .contains("refuses to overwrite tag \"1.0\" of app"),
            "{refused}"
        );
    }

    #[test]
    fn the_cause_is_said_without_the_request() {
        let lost = RegistryError::Timeout {
            request: request(),
            after: Duration::from_secs(3),
        };
        assert!(
            lost.cause().starts_with("timed out: nothing moved for 3s"),
            "{}",
            lost.cause()
        );
        // One said as an earlier error was names that error's request: said whole.
        let before = RegistryError::DeniedBefore {
            request: request(),
            scope: "repository:app:push".into(),
            first: "registry r.example: HEAD /v2/app/manifests/0.9: 403: not allowed".into(),
            help: String::new(),
        };
        assert_eq!(before.cause(), before.to_string());
    }

    #[test]
    fn describes_error_bodies() {
        let quay =
            error_entries(br#"{"errors":[{"code":"TAG_IMMUTABLE","message":"tag is immutable"}]}"#);
        assert!(error_entries(b"<html>").is_empty());
        assert_eq!(describe(&quay), ": TAG_IMMUTABLE: tag is immutable");
    }

    #[test]
    fn a_registrys_own_words_reach_the_message_bounded_and_redacted() {
        let full = br#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"filesystem: mkdir /var/lib/registry/docker: no space left on device"}]}"#;
        assert_eq!(
            describe_body(full),
            ": UNKNOWN: unknown error (filesystem: mkdir /var/lib/registry/docker: no space left on device)"
        );
        let object = br#"{"errors":[{"code":"DENIED","message":"no","detail":{"Type":"repository","Action":"push"}}]}"#;
        assert!(describe_body(object).contains(r#"({"Action":"push","Type":"repository"})"#));
        assert_eq!(
            describe_body(b"write /data: no space left on device\n"),
            ": write /data: no space left on device"
        );
        assert_eq!(describe_body(b"<html><body>502</body></html>"), "");
        assert_eq!(describe_body(b""), "");
        let long = "x".repeat(5000);
        assert!(describe_body(long.as_bytes()).chars().count() < WORDS_LIMIT + 5);
        let leaky = describe_body(
            b"bad header Authorization: Bearer s3cr3t-t0ken and password=hunter2 eyJhbGciOi.x.y",
        );
        for secret in ["s3cr3t-t0ken", "hunter2", "eyJhbGciOi"] {
            assert!(!leaky.contains(secret), "{leaky}");
        }
    }
}
