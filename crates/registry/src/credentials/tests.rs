//! Finding credentials: every source, in its order.

use super::*;

const D: Duration = Duration::from_secs(5);

fn env(pairs: &[(&str, &str)]) -> CredentialConfig {
    CredentialConfig {
        explicit: None,
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn user_of(r: &Resolved) -> &str {
    &r.credential.as_ref().unwrap().username
}

#[test]
fn host_key_matching_like_docker() {
    assert!(key_matches("https://index.docker.io/v1/", DOCKER_HUB));
    assert!(key_matches("docker.io", DOCKER_HUB));
    assert!(key_matches("https://ghcr.io/v2/", "ghcr.io"));
    assert!(key_matches("GHCR.io", "ghcr.io"));
    assert!(key_matches("localhost:5000", "localhost:5000"));
    assert!(!key_matches("localhost:5001", "localhost:5000"));
    assert!(!key_matches("quay.io/org", "quay.io"));
    assert!(!key_matches("https://index.docker.io/v1/", "ghcr.io"));
}

#[test]
fn order_explicit_then_env_then_docker_auth_config() {
    let auth = B64.encode("cfguser:cfgpass");
    let mut c = env(&[
        ("TAGGUARD_USERNAME", "envuser"),
        ("TAGGUARD_PASSWORD", "envpass"),
        (
            "DOCKER_AUTH_CONFIG",
            &format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}}}}}}"#),
        ),
    ]);
    c.explicit = Some(("cli".into(), Secret::new("p")));
    let r = resolve("ghcr.io", &c, D).unwrap();
    assert_eq!(
        (user_of(&r), &r.source),
        ("cli", &CredentialSource::Explicit)
    );
    c.explicit = None;
    let r = resolve("ghcr.io", &c, D).unwrap();
    assert_eq!(
        (user_of(&r), &r.source),
        ("envuser", &CredentialSource::Environment)
    );
    c.env.remove("TAGGUARD_USERNAME");
    assert!(matches!(
        resolve("ghcr.io", &c, D),
        Err(CredentialError::HalfEnvironment)
    ));
    c.env.remove("TAGGUARD_PASSWORD");
    let r = resolve("ghcr.io", &c, D).unwrap();
    assert_eq!(user_of(&r), "cfguser");
    assert_eq!(
        r.source.to_string(),
        "DOCKER_AUTH_CONFIG auths[\"ghcr.io\"]"
    );
    assert_eq!(
        resolve("quay.io", &c, D).unwrap().source,
        CredentialSource::Anonymous
    );
}

#[test]
fn docker_config_identity_token_and_gitlab() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"username":"hub","password":"x"}},
                "acr.example.io":{{"auth":"{}","identitytoken":"refresh"}}}}}}"#,
            B64.encode(format!("{ACR_TOKEN_USERNAME}:"))
        ),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let c = env(&[
        ("DOCKER_CONFIG", d),
        ("CI_REGISTRY", "gitlab.example.io:5050"),
        ("CI_REGISTRY_USER", "gitlab-ci-token"),
        ("CI_REGISTRY_PASSWORD", "job"),
    ]);
    let r = resolve(DOCKER_HUB, &c, D).unwrap();
    assert_eq!(user_of(&r), "hub");
    let r = resolve("acr.example.io", &c, D).unwrap();
    assert!(
        matches!(r.credential.unwrap().secret, CredentialSecret::IdentityToken(ref t) if t.expose() == "refresh")
    );
    let r = resolve("gitlab.example.io:5050", &c, D).unwrap();
    assert_eq!(
        (user_of(&r), &r.source),
        ("gitlab-ci-token", &CredentialSource::GitlabCi)
    );
}

#[test]
fn broken_files_name_the_file_but_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths":{"h":{"auth":"not-base64!!"}}}"#,
    )
    .unwrap();
    let c = env(&[("DOCKER_CONFIG", dir.path().to_str().unwrap())]);
    let e = resolve("h", &c, D).unwrap_err().to_string();
    assert!(
        e.contains("config.json: auths[\"h\"].auth is not base64"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths": {"h": {"password": 1234567}}"#,
    )
    .unwrap();
    let e = resolve("h", &c, D).unwrap_err().to_string();
    assert!(e.contains("is not valid JSON (line 1"), "{e}");
    assert!(!e.contains("1234567"), "{e}");
}

#[test]
fn acr_username_makes_the_password_a_refresh_token() {
    let c = Credential::password(ACR_TOKEN_USERNAME, Secret::new("r"));
    assert!(matches!(c.secret, CredentialSecret::IdentityToken(_)));
}
