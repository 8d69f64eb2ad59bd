//! The rig of the fault tests: a real registry with `acme/app:1.0.0` behind a fault proxy that
//! also fronts its token server, and what the fault tests share.

use std::time::{Duration, SystemTime};

use tagguard_registry::RegistryClient;

use crate::support::client::{RETRY_AFTER_CAP, credentials, fast_transport};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule, Seen};
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};

/// A real registry with `acme/app:1.0.0`, behind a fault proxy that also fronts its token server.
pub struct Rig {
    pub registry: Registry,
    pub proxy: FaultProxy,
    pub digest: String,
}

impl Rig {
    pub fn start(mode: Mode) -> Rig {
        let registry = Registry::start(mode);
        let digest = registry.seed(&Image::random(), "acme/app", "1.0.0");
        let token = registry.token.as_ref().map(|t| t.server.host());
        let routes: Vec<(&str, &str)> = token.iter().map(|t| ("/token", t.as_str())).collect();
        let proxy = FaultProxy::start(&registry.host, &routes);
        Rig {
            registry,
            proxy,
            digest,
        }
    }

    /// A fresh client (no cached scheme or token) through the proxy.
    pub fn client(&self) -> RegistryClient {
        let env: &[(&str, &str)] = if self.registry.mode == Mode::Plain {
            &[]
        } else {
            &[("TAGGUARD_USERNAME", USER), ("TAGGUARD_PASSWORD", PASSWORD)]
        };
        RegistryClient::new(&self.proxy.host(), &credentials(env), &fast_transport()).unwrap()
    }

    /// Puts `rule` in place of any earlier one; returns how many requests `method path` had.
    pub fn inject(&self, method: &str, path: &str, fault: Fault, first: usize) -> usize {
        self.proxy.clear_rules();
        self.proxy
            .rule(Rule::new(Some(method), path, fault).first(first));
        self.proxy.count(method, path)
    }

    /// The requests `method path` since `from` of them.
    pub fn attempts(&self, method: &str, path: &str, from: usize) -> Vec<Seen> {
        let re = regex::Regex::new(&format!("^(?:{path})$")).unwrap();
        self.proxy
            .requests()
            .into_iter()
            .filter(|s| s.method == method && re.is_match(s.path()))
            .skip(from)
            .collect()
    }
}

pub fn retry_after_date() -> String {
    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3))
}

/// Faults a retry gets past, for requests whose repetition is harmless.
pub fn transient(with_body: bool) -> Vec<(&'static str, Fault)> {
    let mut v = vec![
        ("500", Fault::status(500)),
        ("502", Fault::status(502)),
        ("503", Fault::status(503)),
        (
            "429 Retry-After seconds",
            Fault::status(429).with_header("Retry-After", "1"),
        ),
        (
            "429 Retry-After HTTP-date",
            Fault::status(429).with_header("Retry-After", retry_after_date()),
        ),
        (
            "503 malformed JSON error body",
            Fault::status(503)
                .with_header("Content-Type", "application/json")
                .with_body(br#"{"errors":[{"code":"UNAVAILABLE","mess"#),
        ),
        ("reset", Fault::Reset),
        ("stall", Fault::Stall),
    ];
    if with_body {
        v.push(("reset mid-body", Fault::ResetMidBody));
        v.push(("truncated body", Fault::TruncateBody));
    }
    v
}

/// Asserts that the fault cost exactly one extra attempt, and that a 429's `Retry-After` was
/// honoured up to the cap (backoff alone is under 20 ms).
pub fn assert_retried_once(name: &str, attempts: &[Seen]) {
    assert_eq!(attempts.len(), 2, "{name}: {attempts:#?}");
    assert!(
        attempts[0].fault.is_some() && attempts[1].fault.is_none(),
        "{name}"
    );
    let gap = attempts[1].at - attempts[0].at;
    // The gap the proxy saw: at least the cap, and (with room) short of the 2–3 s the date
    // asks for (it has whole seconds).
    if name.starts_with("429") {
        assert!(
            gap >= RETRY_AFTER_CAP && gap < Duration::from_millis(1500),
            "{name}: waited {gap:?}, expected the capped Retry-After {RETRY_AFTER_CAP:?}"
        );
    }
}

pub const MANIFEST: &str = "/v2/acme/app/manifests/1.0.0";
