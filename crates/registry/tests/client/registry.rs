//! The registry client against a stub server, for what a real registry cannot show: opaque
//! pagination tokens, 429/503 with Retry-After, other registries' error bodies, ACR's refresh
//! tokens, redirects to other hosts, lying digests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tagguard_registry::ACR_TOKEN_USERNAME;
use tagguard_registry::{Digest, RegistryClient, RegistryError, TransportConfig, WriteFate};

use crate::support::client::credentials;
use crate::support::http::{Response, Server};

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn client(host: &str, env: &[(&str, &str)]) -> RegistryClient {
    let mut transport = TransportConfig::default();
    transport.retry.base_delay = Duration::from_millis(5);
    RegistryClient::new(host, &credentials(env), &transport).unwrap()
}

#[tokio::test]
async fn tag_listing_follows_relative_and_absolute_links_with_opaque_tokens() {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let s = Server::start(move |req| {
        let q = req.query();
        let last = q.iter().find(|(k, _)| k == "last").map(|(_, v)| v.as_str());
        let cursor = q
            .iter()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.as_str());
        match (last, cursor) {
            (None, None) => Response::new(200)
                .header(
                    "Link",
                    r#"</v2/acme/app/tags/list?n=2&last=b3BhcXVl%2B%2F%3D%3D>; rel="next""#,
                )
                .json(serde_json::json!({"name": "acme/app", "tags": ["a", "b"]})),
            (Some("b3BhcXVl+/=="), None) => Response::new(200)
                .header(
                    "Link",
                    format!(
                        r#"<http://127.0.0.1:{}/v2/acme/app/tags/list?cursor=Zz>; rel="next""#,
                        p.lock().unwrap()
                    ),
                )
                .json(serde_json::json!({"name": "acme/app", "tags": ["c", "d"]})),
            (None, Some("Zz")) => {
                Response::new(200).json(serde_json::json!({"name": "acme/app", "tags": ["e"]}))
            }
            _ => Response::new(400),
        }
    });
    *port.lock().unwrap() = s.port;
    let tags = client(&s.host(), &[]).list_tags("acme/app").await.unwrap();
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn retry_after_in_seconds_and_as_a_date_is_honoured() {
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let s = Server::start(move |_| match count.fetch_add(1, Ordering::SeqCst) {
        0 => Response::new(429).header("Retry-After", "1"),
        1 => Response::new(503).header(
            "Retry-After",
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2)),
        ),
        _ => Response::new(200).header("Docker-Content-Digest", DIGEST_A),
    });
    let start = Instant::now();
    let head = client(&s.host(), &[])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest.to_string(), DIGEST_A);
    assert_eq!(s.requests().len(), 3);
    // 1 s, then an HTTP-date 1–2 s ahead (whole seconds).
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let s = Server::start(|_| Response::new(503));
    let e = client(&s.host(), &[])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::Status { status: 503, .. }),
        "{e}"
    );
    assert_eq!(s.requests().len(), 1 + 3);
    assert_eq!(
        e.to_string(),
        format!(
            "registry {}: HEAD /v2/acme/app/manifests/1.0: unexpected status 503",
            s.host()
        )
    );
}

/// Each registry's way of saying "this tag is immutable / locked / protected" (the table in
/// docs/registries.md), answered to a tag PUT: a refusal, worded as the registry's, whose write
/// fate is `Refused` (exit 3 for the run, never a credentials problem).
#[tokio::test]
async fn registries_immutability_errors_become_immutable() {
    let cases = [
        (
            412,
            "PRECONDITION",
            "Failed to process request due to 'app:1.0' configured as immutable.",
        ),
        (409, "TAG_IMMUTABLE", "tag 1.0 is immutable"),
        (
            401,
            "IMMUTABLE_TAG",
            "tag 1.0 is protected against overwrites",
        ),
        (401, "PROTECTED_TAG", "tag 1.0 is protected"),
        (
            400,
            "TAG_INVALID",
            "The image tag '1.0' already exists in the 'app' repository and cannot be overwritten because the repository is immutable.",
        ),
        (
            400,
            "TAG_INVALID",
            "The image tag '1.0' already exists in the 'app' repository and cannot be overwritten because the tag is immutable.",
        ),
        // Docker Hub, with immutable tags on.
        (403, "DENIED", "tag is immutable: 1.0 cannot be overwritten"),
        // ACR, with the repository, tag or manifest locked (write-enabled false).
        (
            409,
            "DENIED",
            "The operation is disallowed on this registry, repository or manifest.",
        ),
        // Any other registry saying so in the spec's error body (MSR/DTR).
        (
            400,
            "UNKNOWN",
            "tag=1.0 cannot be overwritten because r.example/app is an immutable repository",
        ),
    ];
    for (status, code, message) in cases {
        let s = Server::start(move |_| {
            Response::new(status)
                .json(serde_json::json!({"errors": [{"code": code, "message": message}]}))
        });
        let e = client(
            &s.host(),
            &[("TAGGUARD_USERNAME", "u"), ("TAGGUARD_PASSWORD", "p")],
        )
        .put_manifest(
            "app",
            "1.0",
            "application/vnd.oci.image.manifest.v1+json",
            b"{}",
        )
        .await
        .unwrap_err();
        match &e {
            RegistryError::Refused { tag, code: c, .. } => {
                assert_eq!((tag.as_deref(), c.as_str()), (Some("1.0"), code))
            }
            other => panic!("{status} {code}: {other}"),
        }
        assert!(e.is_refusal(), "{e}");
        assert_eq!(e.write_fate(), WriteFate::Refused, "{e}");
        let text = e.to_string();
        assert!(text.contains("refuses to overwrite tag \"1.0\""), "{e}");
        assert!(text.contains(message), "{e}");
        assert!(!text.contains("credentials"), "{e}");
        assert_eq!(
            miette::Diagnostic::code(&e)
                .map(|c| c.to_string())
                .as_deref(),
            Some("tagguard::registry::refused")
        );
    }
}

/// A 403 that is about permissions stays an authorization error; a 5xx is a failure whose write
/// may have landed, a 429 one that provably did not.
#[tokio::test]
async fn permissions_and_failures_are_not_refusals() {
    let cases = [
        (
            403,
            serde_json::json!({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}),
            WriteFate::NotApplied,
            "tagguard::registry::unauthorized",
        ),
        (
            500,
            serde_json::json!({"errors": [{"code": "UNKNOWN", "message": "tag is immutable"}]}),
            WriteFate::Unknown,
            "tagguard::registry::status",
        ),
        (
            429,
            serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}),
            WriteFate::NotApplied,
            "tagguard::registry::status",
        ),
    ];
    for (status, body, fate, code) in cases {
        let b = body.clone();
        let s = Server::start(move |_| Response::new(status).json(b.clone()));
        let e = client(
            &s.host(),
            &[("TAGGUARD_USERNAME", "u"), ("TAGGUARD_PASSWORD", "p")],
        )
        .put_manifest(
            "app",
            "1.0",
            "application/vnd.oci.image.manifest.v1+json",
            b"{}",
        )
        .await
        .unwrap_err();
        assert!(!e.is_refusal(), "{status}: {e}");
        assert_eq!(e.write_fate(), fate, "{status}: {e}");
        assert_eq!(
            miette::Diagnostic::code(&e)
                .map(|c| c.to_string())
                .as_deref(),
            Some(code),
            "{status}: {e}"
        );
    }
}

#[tokio::test]
async fn acr_refresh_token_flow_with_access_token() {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let s = Server::start(move |req| match (req.method.as_str(), req.path()) {
        ("POST", "/oauth2/token") => {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
                .into_owned()
                .collect();
            let ok = form.contains(&("grant_type".into(), "refresh_token".into()))
                && form.contains(&("refresh_token".into(), "acr-refresh-5ecr3t".into()))
                && form.contains(&("service".into(), "myreg.azurecr.io".into()))
                && form.contains(&("scope".into(), "repository:acme/app:pull".into()));
            if ok {
                Response::new(200).json(serde_json::json!({"access_token": "acr-access-5ecr3t"}))
            } else {
                Response::new(401)
            }
        }
        (_, path) if path.starts_with("/v2/") => {
            if req.header("authorization") == Some("Bearer acr-access-5ecr3t") {
                Response::new(200).header("Docker-Content-Digest", DIGEST_A)
            } else {
                Response::new(401).header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="http://127.0.0.1:{}/oauth2/token",service="myreg.azurecr.io""#,
                        p.lock().unwrap()
                    ),
                )
            }
        }
        _ => Response::new(404),
    });
    *port.lock().unwrap() = s.port;
    let c = client(
        &s.host(),
        &[
            ("TAGGUARD_USERNAME", ACR_TOKEN_USERNAME),
            ("TAGGUARD_PASSWORD", "acr-refresh-5ecr3t"),
        ],
    );
    let head = c.head_manifest("acme/app", "1.0").await.unwrap().unwrap();
    assert_eq!(head.digest.to_string(), DIGEST_A);
    let methods: Vec<String> = s
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert_eq!(
        methods,
        [
            "HEAD /v2/acme/app/manifests/1.0",
            "POST /oauth2/token",
            "HEAD /v2/acme/app/manifests/1.0"
        ]
    );
}

#[tokio::test]
async fn a_redirect_to_another_host_carries_no_authorization() {
    let body = br#"{"schemaVersion":2}"#.to_vec();
    let digest = Digest::sha256_of(&body).to_string();
    let (b, d) = (body.clone(), digest.clone());
    let other = Server::start(move |_| {
        Response::manifest(b.clone()).header("Docker-Content-Digest", d.clone())
    });
    let target = format!("http://{}/blob-store/manifest", other.host());
    let registry = Server::start(move |req| match req.header("authorization") {
        None => Response::new(401).header("WWW-Authenticate", r#"Basic realm="r""#),
        Some(_) => Response::new(307).header("Location", target.clone()),
    });
    let c = client(
        &registry.host(),
        &[
            ("TAGGUARD_USERNAME", "u"),
            ("TAGGUARD_PASSWORD", "redirect-5ecr3t"),
        ],
    );
    let m = c.get_manifest("acme/app", &digest).await.unwrap().unwrap();
    assert_eq!(m.bytes, body);
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(registry.requests().len(), 2);
    assert!(registry.requests()[1].header("authorization").is_some());
    let seen = other.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test]
async fn a_body_that_does_not_match_its_digest_is_rejected() {
    let s = Server::start(|req| {
        let r = Response::manifest(b"{\"tampered\":true}".to_vec());
        // HEAD gives no digest, so the client falls back to GET and checks the body.
        if req.method == "GET" {
            r.header("Docker-Content-Digest", DIGEST_A)
        } else {
            r
        }
    });
    let e = client(&s.host(), &[])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("expected {DIGEST_A}, got sha256:")),
        "{e}"
    );
    let methods: Vec<String> = s.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}

#[tokio::test]
async fn a_missing_repository_while_listing_tags_is_named() {
    let s = Server::start(|_| {
        Response::new(404).json(serde_json::json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}))
    });
    let e = client(&s.host(), &[])
        .list_tags("acme/nope")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "registry {}: GET /v2/acme/nope/tags/list: repository \"acme/nope\" does not exist",
            s.host()
        )
    );
}

/// A token endpoint whose certificate is not trusted: the TLS error names the CA file that was
/// given (the same trust as for the registry), not only the system trust store.
#[tokio::test]
async fn a_token_endpoint_tls_failure_names_the_ca_file() {
    use crate::support::registry::{Mode, Registry};
    // Two TLS servers with their own CAs: the realm is on one, the CA file is the other's.
    let realm_server = Registry::start(Mode::Tls);
    let other = Registry::start(Mode::Tls);
    let ca = other.ca.clone().unwrap();
    let realm = format!("https://{}/token", realm_server.host);
    let s = Server::start(move |_| {
        Response::new(401).header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="s""#),
        )
    });
    let mut transport = TransportConfig::default();
    transport.retry.base_delay = Duration::from_millis(5);
    transport.retry.max_retries = 0;
    transport.ca_file = Some(ca.clone());
    transport.insecure = vec![s.host()];
    let credentials = credentials(&[("TAGGUARD_USERNAME", "u"), ("TAGGUARD_PASSWORD", "p")]);
    let e = RegistryClient::new(&s.host(), &credentials, &transport)
        .unwrap()
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("token endpoint"), "{text}");
    assert!(
        text.contains(&format!("system trust store + {}", ca.display())),
        "{text}"
    );
}

/// Bodies have bounds, and the error names the bound: a manifest over 4 MiB, a token response
/// over 1 MiB, an error body over 64 KiB (left unread, and said so).
#[tokio::test]
async fn oversized_bodies_are_errors_naming_the_limit() {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let s = Server::start(move |req| match req.path() {
        "/token" => Response::new(200).body(vec![b' '; (1 << 20) + 1]),
        "/v2/acme/big/manifests/1.0" => Response::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(vec![b' '; (4 << 20) + 1]),
        "/v2/acme/loud/manifests/1.0" => Response::new(400).body(vec![b'x'; (64 << 10) + 1]),
        _ if req.header("authorization").is_none() && req.path().starts_with("/v2/acme/auth") => {
            Response::new(401).header(
                "WWW-Authenticate",
                format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="s""#,
                    p.lock().unwrap()
                ),
            )
        }
        _ => Response::new(404),
    });
    *port.lock().unwrap() = s.port;
    let c = client(&s.host(), &[]);
    let e = c.get_manifest("acme/big", "1.0").await.unwrap_err();
    assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("the manifest is larger than the limit of 4194304 bytes"),
        "{e}"
    );
    let e = c.get_manifest("acme/loud", "1.0").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("the error body is larger than 65536 bytes; not read"),
        "{e}"
    );
    let c = client(&s.host(), &[]);
    let e = c.head_manifest("acme/auth", "1.0").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("the token response is larger than the limit of 1048576 bytes"),
        "{e}"
    );
}
