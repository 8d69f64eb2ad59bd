//! Credentials never travel in clear to a host that is not loopback and not marked insecure: not
//! through a redirect, not to a token realm a registry names. Tests cannot reach a non-loopback
//! host, so host names are pinned to loopback servers with `TransportConfig::resolve`; the client
//! then *could* reach them, and the servers count what arrives.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tagguard_registry::{Digest, RegistryClient, RegistryError};

use crate::support::client::{credentials, fast_transport};
use crate::support::http::{Response, Server};

const SECRET: &str = "guard-5ecr3t-password";

fn client(host: &str, pinned: &[(&str, u16)], insecure: &[&str]) -> RegistryClient {
    let mut transport = fast_transport();
    transport.resolve = pinned
        .iter()
        .map(|(name, port)| (name.to_string(), SocketAddr::from(([127, 0, 0, 1], *port))))
        .collect();
    transport.insecure = insecure.iter().map(|s| s.to_string()).collect();
    let credentials = credentials(&[("TAGGUARD_USERNAME", "u"), ("TAGGUARD_PASSWORD", SECRET)]);
    RegistryClient::new(host, &credentials, &transport).unwrap()
}

fn manifest_server() -> (Server, Vec<u8>) {
    let body =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_vec();
    let b = body.clone();
    let s = Server::start(move |_| {
        Response::manifest(b.clone())
            .header("Docker-Content-Digest", Digest::sha256_of(&b).to_string())
    });
    (s, body)
}

/// A Basic-auth registry on loopback that redirects manifest requests to `target`.
fn redirecting_registry(target: String) -> Server {
    Server::start(move |req| match req.header("authorization") {
        None => Response::new(401).header("WWW-Authenticate", r#"Basic realm="r""#),
        Some(_) => Response::new(307).header("Location", format!("{target}{}", req.target)),
    })
}

#[tokio::test]
async fn no_redirect_to_plain_http_on_a_host_not_marked_insecure() {
    let (blob_store, body) = manifest_server();
    let registry = redirecting_registry(format!("http://blobs.example:{}", blob_store.port));
    let pinned = [("blobs.example", blob_store.port)];

    let e = client(&registry.host(), &pinned, &[])
        .get_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::InsecureScheme { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "refusing plain HTTP to http://blobs.example:{}/v2/acme/app/manifests/1.0",
            blob_store.port
        )),
        "{e}"
    );
    assert_eq!(blob_store.requests().len(), 0);

    // Marked insecure, the same redirect is followed (so the refusal above was the guard, not an
    // unreachable host), and still without the registry's credentials.
    let m = client(&registry.host(), &pinned, &["blobs.example"])
        .get_manifest("acme/app", "1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.bytes, body);
    let seen = blob_store.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test]
async fn no_credentials_to_a_plain_http_token_realm_on_a_host_not_marked_insecure() {
    let token = Server::start(|_| Response::new(200).json(serde_json::json!({"token": "t"})));
    let realm = format!("http://auth.example:{}/token", token.port);
    let registry = Server::start(move |req| match req.header("authorization") {
        Some("Bearer t") => {
            Response::new(200).header("Docker-Content-Digest", Digest::sha256_of(b"x").to_string())
        }
        _ => Response::new(401).header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="s""#),
        ),
    });
    let pinned = [("auth.example", token.port)];

    let e = client(&registry.host(), &pinned, &[])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::InsecureScheme { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "refusing plain HTTP to http://auth.example:{}/token",
            token.port
        )),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains(SECRET));
    assert_eq!(token.requests().len(), 0, "credentials reached the realm");

    // Marked insecure: the realm is asked, with the credentials.
    client(&registry.host(), &pinned, &["auth.example"])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap()
        .unwrap();
    let seen = token.requests();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    );
}

#[tokio::test]
async fn a_registry_that_is_not_loopback_is_spoken_to_over_tls_only() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let r = received.clone();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 4096];
            if let Ok(n) = s.read(&mut buf) {
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let host = format!("registry.example:{port}");
    let e = client(&host, &[("registry.example", port)], &[])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    // The listener hangs up after the handshake's first flight; whatever the client makes of
    // that, it never spoke plain HTTP.
    assert!(!format!("{e:?}").contains(SECRET), "{e}");
    let bytes = received.lock().unwrap().clone();
    assert_eq!(bytes.first(), Some(&0x16), "not a TLS handshake: {bytes:?}");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("HTTP/1.1") && !text.contains(SECRET),
        "{text}"
    );
}

/// A plain-HTTP registry reached by a name that is not loopback (docker-in-docker's
/// `registry:5000`) is spoken to over HTTPS and answers in plain HTTP: the error says so and
/// names `--insecure-registry HOST` as the way out, in the message and in the help.
#[tokio::test]
async fn a_plain_http_answer_to_https_names_insecure_registry() {
    use crate::support::registry::{Mode, Registry};
    let r = Registry::start(Mode::Plain);
    let port: u16 = r.host.rsplit_once(':').unwrap().1.parse().unwrap();
    let host = format!("registry:{port}");
    let e = client(&host, &[("registry", port)], &[])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::PlainHttp { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("registry {host}: HEAD /v2/acme/app/manifests/1.0")),
        "{text}"
    );
    assert!(
        text.contains(&format!("pass --insecure-registry {host}")),
        "{text}"
    );
    let help = miette::Diagnostic::help(&e).unwrap().to_string();
    assert!(
        help.contains(&format!("--insecure-registry {host}")),
        "{help}"
    );
    assert!(!text.contains(SECRET), "{text}");
    // Marked insecure, the same registry answers.
    let found = client(&host, &[("registry", port)], &[&host])
        .head_manifest("acme/app", "1.0")
        .await
        .unwrap();
    assert_eq!(found, None);
}

/// A tag list whose `Link` goes to plain HTTP on a host that is not loopback: refused before
/// the host is looked up (a name that cannot resolve gives `InsecureScheme`, not a DNS error),
/// and a pinned server under that name gets nothing.
#[tokio::test]
async fn a_plain_http_link_to_another_host_is_refused_before_any_lookup() {
    let (elsewhere, _) = manifest_server();
    for target in [
        "http://tags.invalid/v2/acme/app/tags/list?last=b".to_owned(),
        format!(
            "http://tags.example:{}/v2/acme/app/tags/list?last=b",
            elsewhere.port
        ),
    ] {
        let t = target.clone();
        let s = Server::start(move |_| {
            Response::new(200)
                .header("Link", format!("<{t}>; rel=\"next\""))
                .json(serde_json::json!({"name": "acme/app", "tags": ["a"]}))
        });
        let e = client(&s.host(), &[("tags.example", elsewhere.port)], &[])
            .list_tags("acme/app")
            .await
            .unwrap_err();
        assert!(
            matches!(e, RegistryError::InsecureScheme { .. }),
            "{target}: {e}"
        );
        assert!(e.to_string().contains(&target), "{e}");
    }
    assert!(
        elsewhere.requests().is_empty(),
        "the other host got a request"
    );
}
