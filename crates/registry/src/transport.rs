//! How tagguard talks to a registry: HTTPS with the system trust store (plus a CA file if given),
//! plain HTTP only for loopback hosts and registries marked insecure, timeouts, retries.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::error::RegistryError;
use super::reference::split_host_port;
use super::retry::RetryPolicy;

/// The default `--timeout`: with the default retries, a registry that stops answering ends the
/// run within (retries + 1) × timeout + retries × the longest wait between tries (10 s):
/// 4 × 15 s + 3 × 10 s = 90 s (docs/registries.md).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Hosts (`host` or `host:port`) that may be spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// A CA bundle (PEM) trusted for every registry, in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// A CA bundle (PEM) per registry host, in addition to the system's.
    pub ca_files: BTreeMap<String, PathBuf>,
    pub connect_timeout: Duration,
    /// How long a request may go without a byte moving (sending or receiving); not a limit on
    /// the whole request, so a large blob takes as long as it needs while bytes flow.
    pub timeout: Duration,
    /// How long a credential helper (`docker-credential-*`) may take before it is killed.
    pub helper_deadline: Duration,
    pub retry: RetryPolicy,
    /// How many requests are in flight at once, per registry (the start and the cap of its
    /// adaptive limit: a 429 or a 503 halves it, answers raise it again; at most 128).
    pub concurrency: usize,
    pub user_agent: String,
    /// Host names pinned to addresses, bypassing DNS (as `curl --resolve`): `(name, address)`.
    pub resolve: Vec<(String, std::net::SocketAddr)>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            insecure: Vec::new(),
            ca_file: None,
            ca_files: BTreeMap::new(),
            connect_timeout: Duration::from_secs(10),
            timeout: DEFAULT_TIMEOUT,
            helper_deadline: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            concurrency: super::limiter::CAP,
            user_agent: concat!("tagguard/", env!("CARGO_PKG_VERSION")).to_owned(),
            resolve: Vec::new(),
        }
    }
}

/// The host part of `host[:port]` / `[v6]:port`.
fn hostname(host: &str) -> &str {
    match split_host_port(host) {
        Some((name, None)) => name,
        Some((name, Some(port))) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `host[:port]` of a URL, as registries are named (`[v6]:port` for IPv6): the one place that
/// writes a host and port together.
pub fn authority(url: &reqwest::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = hostname(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl TransportConfig {
    fn ca_file_for(&self, host: &str) -> Option<&PathBuf> {
        self.ca_files.get(host).or(self.ca_file.as_ref())
    }

    /// May `host` be spoken to over plain HTTP?
    pub fn allows_http(&self, host: &str) -> bool {
        is_loopback(host)
            || self
                .insecure
                .iter()
                .any(|i| i.eq_ignore_ascii_case(host) || i.eq_ignore_ascii_case(hostname(host)))
    }

    /// `http` for hosts marked insecure and for loopback hosts without a CA file, else `https`.
    pub fn scheme_for(&self, host: &str) -> &'static str {
        let marked = self
            .insecure
            .iter()
            .any(|i| i.eq_ignore_ascii_case(host) || i.eq_ignore_ascii_case(hostname(host)));
        if marked || (is_loopback(host) && self.ca_file_for(host).is_none()) {
            "http"
        } else {
            "https"
        }
    }

    /// Which CAs are trusted for `host`, for error messages.
    pub fn describe_trust(&self, host: &str) -> String {
        match self.ca_file_for(host) {
            Some(p) => format!("system trust store + {}", p.display()),
            None => "system trust store".to_owned(),
        }
    }

    /// An HTTP client for one registry: connection pool, HTTP/2 by ALPN, no automatic redirects
    /// (the client follows them itself so credentials never leave the registry's host).
    pub fn http_client(&self, host: &str) -> Result<reqwest::Client, RegistryError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut extra: Vec<CertificateDer<'static>> = Vec::new();
        if let Some(path) = self.ca_file_for(host) {
            let ca_err = |e: rustls_pki_types::pem::Error| RegistryError::CaFile {
                host: host.to_owned(),
                path: path.clone(),
                source: Box::new(e),
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(ca_err)? {
                extra.push(cert.map_err(ca_err)?);
            }
            if extra.is_empty() {
                return Err(RegistryError::CaFile {
                    host: host.to_owned(),
                    path: path.clone(),
                    source: "no PEM certificate in it".into(),
                });
            }
        }
        let tls_err = |e: rustls::Error| RegistryError::CaFile {
            host: host.to_owned(),
            path: self.ca_file_for(host).cloned().unwrap_or_default(),
            source: Box::new(e),
        };
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                .map_err(tls_err)?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut builder = reqwest::Client::builder();
        for (name, addr) in &self.resolve {
            builder = builder.resolve(name, *addr);
        }
        builder
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent.clone())
            .pool_max_idle_per_host(self.concurrency.max(1))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| RegistryError::CaFile {
                host: host.to_owned(),
                path: self.ca_file_for(host).cloned().unwrap_or_default(),
                source: Box::new(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_schemes() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "127.9.9.9",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.evil.com",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
        let mut t = TransportConfig::default();
        assert_eq!(t.scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(t.scheme_for("ghcr.io"), "https");
        assert!(!t.allows_http("ghcr.io"));
        t.insecure.push("registry.lan".into());
        assert_eq!(t.scheme_for("registry.lan:5000"), "http");
        assert!(t.allows_http("registry.lan:5000"));
        t.ca_files.insert("127.0.0.1:5000".into(), "/ca.pem".into());
        assert_eq!(t.scheme_for("127.0.0.1:5000"), "https");
        assert_eq!(
            t.describe_trust("127.0.0.1:5000"),
            "system trust store + /ca.pem"
        );
    }

    /// The promise of docs/registries.md: with the default flags, a registry that stops
    /// answering costs one request's worst case, (retries + 1) × timeout + retries × the longest
    /// wait between tries, and that is at most 90 s.
    #[test]
    fn a_stalled_registry_costs_at_most_90_seconds_with_the_defaults() {
        let t = TransportConfig::default();
        let attempts = t.retry.max_retries + 1;
        let waits = t.retry.max_retry_after.max(t.retry.max_delay) * t.retry.max_retries;
        assert!(t.timeout >= t.connect_timeout);
        assert_eq!(t.timeout * attempts + waits, Duration::from_secs(90));
    }

    #[test]
    fn authority_keeps_ports_and_brackets() {
        let a = |u: &str| authority(&reqwest::Url::parse(u).unwrap());
        assert_eq!(a("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(a("https://ghcr.io/v2/"), "ghcr.io");
        assert_eq!(a("http://[::1]:80/"), "[::1]");
        assert_eq!(a("http://[::1]:5000/"), "[::1]:5000");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let t = TransportConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TransportConfig::default()
        };
        let e = t.http_client("r.example").unwrap_err().to_string();
        assert!(
            e.starts_with("registry r.example: could not use CA file /nonexistent/ca.pem"),
            "{e}"
        );
    }
}
