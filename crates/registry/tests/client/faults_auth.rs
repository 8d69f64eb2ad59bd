//! Credentials and tokens under injected faults: a redirect to another host carries no
//! `Authorization`, token failures that persist or redirect name the token endpoint, a credential
//! helper that never answers is stopped.

use std::time::{Duration, Instant};

use tagguard_registry::{Digest, RegistryClient, TransportConfig};

use crate::rig::{MANIFEST, Rig};
use crate::support::client::{RETRIES, credentials, fast_transport};
use crate::support::fault_proxy::Fault;
use crate::support::http::{Response, Server};
use crate::support::registry::{Mode, PASSWORD};

#[tokio::test]
async fn a_redirect_to_another_host_gets_no_authorization_but_the_registry_does() {
    let rig = Rig::start(Mode::Token);
    let (media_type, bytes) = {
        let m = rig
            .client()
            .get_manifest("acme/app", "1.0.0")
            .await
            .unwrap()
            .unwrap();
        (m.media_type, m.bytes)
    };
    let elsewhere = Server::start(move |_| {
        let digest = Digest::sha256_of(&bytes).to_string();
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), media_type.clone())],
            body: bytes.clone(),
        }
        .header("Docker-Content-Digest", digest)
    });
    for method in ["GET", "HEAD"] {
        // Learn the scheme and get a token first, so the redirected request carries one.
        let c = rig.client();
        rig.proxy.clear_rules();
        c.head_manifest("acme/app", "1.0.0").await.unwrap();
        let before = rig.inject(
            method,
            MANIFEST,
            Fault::Redirect {
                target: format!("http://{}", elsewhere.host()),
            },
            usize::MAX,
        );
        let digest = if method == "GET" {
            c.get_manifest("acme/app", "1.0.0")
                .await
                .unwrap()
                .unwrap()
                .digest
        } else {
            c.head_manifest("acme/app", "1.0.0")
                .await
                .unwrap()
                .unwrap()
                .digest
        };
        assert_eq!(digest.to_string(), rig.digest);
        let to_registry = rig.attempts(method, MANIFEST, before);
        assert_eq!(to_registry.len(), 1, "{to_registry:#?}");
        assert!(
            to_registry[0]
                .header("authorization")
                .is_some_and(|a| a.starts_with("Bearer ")),
            "{method}: the registry itself got no token: {to_registry:#?}"
        );
    }
    let seen = elsewhere.requests();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for r in seen {
        assert_eq!(r.header("authorization"), None, "{r:?}");
    }
}

#[tokio::test]
async fn token_failures_that_persist_or_redirect_fail_naming_the_token_endpoint() {
    let rig = Rig::start(Mode::Token);
    let elsewhere = Server::start(|_| Response::new(200).json(serde_json::json!({"token": "x"})));
    let cases: Vec<(&str, Fault, usize, String)> = vec![
        (
            "persistent 503",
            Fault::status(503),
            1 + RETRIES as usize,
            "answered 503".to_owned(),
        ),
        (
            "redirect to another host",
            Fault::Redirect {
                target: format!("http://{}", elsewhere.host()),
            },
            1,
            "answered 307".to_owned(),
        ),
        (
            "persistent stall",
            Fault::Stall,
            1 + RETRIES as usize,
            "timed out".to_owned(),
        ),
    ];
    for (name, fault, attempts, cause) in cases {
        let before = rig.inject("GET", "/token", fault, usize::MAX);
        let e = rig
            .client()
            .head_manifest("acme/app", "1.0.0")
            .await
            .expect_err(name)
            .to_string();
        assert!(
            e.starts_with(&format!("registry {}", rig.proxy.host())),
            "{name}: {e}"
        );
        assert!(e.contains(&cause), "{name}: {e}");
        assert!(!e.contains(PASSWORD), "{name}: {e}");
        assert_eq!(
            rig.attempts("GET", "/token", before).len(),
            attempts,
            "{name}"
        );
    }
    assert!(
        elsewhere.requests().is_empty(),
        "a token request followed a redirect"
    );
}

/// A credential helper that never answers is stopped after the deadline, and the error names it.
#[test]
fn a_credential_helper_that_never_answers_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-forever");
    std::fs::write(&helper, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    let mut perms = std::fs::metadata(&helper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&helper, perms).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"credHelpers":{"r.example":"forever"}}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
        ("PATH", &path),
    ];
    let transport = TransportConfig {
        helper_deadline: Duration::from_millis(500),
        ..fast_transport()
    };
    let start = Instant::now();
    let Err(e) = RegistryClient::new("r.example", &credentials(&env), &transport) else {
        panic!("a helper that never answers gave credentials");
    };
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let text = e.to_string();
    assert!(
        text.contains("docker-credential-forever") && text.contains("gave no answer"),
        "{text}"
    );
}
