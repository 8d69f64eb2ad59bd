//! `check` against a real registry: decisions, credentials, transport, request counts.

use tagguard::check;
use tagguard::plan::PlanError;
use tagguard::plan::{Action, RefusalReason};
use tagguard::policy::Floating;
use tagguard::source::SourceError;
use tagguard::tags::{Computed, ComputedTag};
use tagguard_registry::RegistryError;

use crate::support::client::check_config;
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER, docker_config};

fn src_of(text: &str) -> tagguard::source::SourceSpec {
    text.parse().unwrap()
}

fn tag(name: &str, immutable: bool, floating: Option<Floating>) -> ComputedTag {
    ComputedTag {
        tag: name.into(),
        immutable,
        floating,
        rule: 1,
        rule_line: 1,
        on_conflict: tagguard::policy::OnConflict::Refuse,
        template: format!("{name}-template"),
    }
}

fn computed(images: &[String], tags: Vec<ComputedTag>) -> Computed {
    Computed {
        images: images.to_vec(),
        tags,
        version: None,
        release_tag: None,
        dirty: false,
        dirty_files: Vec::new(),
        policy: "test".into(),
        labels: Default::default(),
    }
}

fn auths(host: &str) -> serde_json::Value {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    serde_json::json!({"auths": {(format!("http://{host}/v2/")): {"auth": auth}}})
}

#[tokio::test]
async fn every_action_against_a_real_registry_in_one_round_of_requests() {
    let r = Registry::start(Mode::Plain);
    let (built, other) = (Image::random(), Image::random());
    let source = r.seed(&built, "ci/build", "sha-abc");
    r.seed(&built, "acme/app", "1.0.0");
    let elsewhere = r.seed(&other, "acme/app", "0.9.0");
    r.seed(&other, "acme/app", "main");
    r.seed(&other, "acme/app", "1");
    let before = r.request_count();

    let images = [
        format!("{}/acme/app", r.host),
        format!("{}/acme/new", r.host),
    ];
    let c = computed(
        &images,
        vec![
            tag("1.0.0", true, None),
            tag("1.1.0", true, None),
            tag("0.9.0", true, None),
            tag("main", false, None),
            tag("1", true, Some(Floating::Major)),
        ],
    );
    let src = format!("{}/ci/build:sha-abc", r.host);
    let d = check::check(&c, Some(&src_of(&src)), &check_config(Some(&r), &[]))
        .await
        .unwrap();

    let actions: Vec<(&str, &str, Action)> = d
        .iter()
        .map(|d| {
            (
                d.image.rsplit('/').next().unwrap(),
                d.tag.as_str(),
                d.action,
            )
        })
        .collect();
    use Action::*;
    assert_eq!(
        actions,
        [
            ("app", "1.0.0", Unchanged),
            ("app", "1.1.0", Create),
            ("app", "0.9.0", Refuse),
            ("app", "main", Move),
            ("app", "1", Move),
            ("new", "1.0.0", Create),
            ("new", "1.1.0", Create),
            ("new", "0.9.0", Create),
            ("new", "main", Create),
            ("new", "1", Create),
        ]
    );
    let refused = &d[2];
    assert_eq!(refused.current.as_ref().unwrap().to_string(), elsewhere);
    assert_eq!(refused.desired.as_ref().unwrap().to_string(), source);
    assert_eq!(refused.reason, Some(RefusalReason::PointsElsewhere));
    assert_eq!(refused.template, "0.9.0-template");
    let json = serde_json::to_value(&d[1]).unwrap();
    assert_eq!(json["action"], "create");
    assert_eq!(json["current"], serde_json::Value::Null);
    assert_eq!(json["desired"], source);

    // 1 source lookup + 1 HEAD per image x tag, nothing else.
    let requests = r.requests()[before..].to_vec();
    assert_eq!(requests.len(), 1 + 10, "{requests:#?}");
    assert!(
        requests.iter().all(|l| l.starts_with("HEAD /v2/")),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn without_a_source_an_existing_immutable_tag_is_refused_and_a_missing_source_is_an_error() {
    let r = Registry::start(Mode::Plain);
    r.seed(&Image::random(), "acme/app", "1.0.0");
    let c = computed(
        &[format!("{}/acme/app", r.host)],
        vec![tag("1.0.0", true, None), tag("dev", false, None)],
    );
    let d = check::check(&c, None, &check_config(Some(&r), &[]))
        .await
        .unwrap();
    assert_eq!(d[0].action, Action::Refuse);
    assert_eq!(d[0].reason, Some(RefusalReason::NoSourceToCompare));
    assert_eq!(d[1].action, Action::Create);

    let missing = format!("{}/acme/app:nope", r.host);
    let e = check::check(&c, Some(&src_of(&missing)), &check_config(Some(&r), &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(e, PlanError::Source(SourceError::Missing { .. })),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("--source {missing}: no such image in registry {}", r.host)
    );
}

#[tokio::test]
async fn bearer_tokens_one_fetch_per_scope_and_one_challenge() {
    let r = Registry::start(Mode::Token);
    let img = Image::random();
    let digest = r.seed(&img, "ci/build", "b1");
    for t in ["1.0.0", "1.0.1"] {
        r.seed(&img, "acme/app", t);
    }
    let token = r.token.as_ref().unwrap();
    let (fetches_before, requests_before) = (token.fetches().len(), r.request_count());

    let cfg_dir = docker_config(r.dir.path(), auths(&r.host));
    let tags: Vec<ComputedTag> = (0..12)
        .map(|i| tag(&format!("1.0.{i}"), true, None))
        .collect();
    let c = computed(&[format!("{}/acme/app", r.host)], tags);
    let src = format!("{}/ci/build:b1", r.host);
    let config = check_config(Some(&r), &[("DOCKER_CONFIG", cfg_dir.to_str().unwrap())]);
    let d = check::check(&c, Some(&src_of(&src)), &config)
        .await
        .unwrap();
    assert_eq!(d[0].action, Action::Unchanged);
    assert_eq!(d[0].current.as_ref().unwrap().to_string(), digest);
    assert_eq!(d[1].action, Action::Unchanged);
    assert!(d[2..].iter().all(|d| d.action == Action::Create));

    let mut fetches = token.fetches()[fetches_before..].to_vec();
    fetches.sort();
    assert_eq!(
        fetches,
        [
            (
                "GET".to_string(),
                vec!["repository:acme/app:pull".to_string()]
            ),
            (
                "GET".to_string(),
                vec!["repository:ci/build:pull".to_string()]
            ),
        ]
    );
    // One unauthenticated request learns the challenge and is retried; then 1 source + 12 tags.
    let requests = r.requests()[requests_before..].to_vec();
    assert_eq!(requests.len(), 1 + 1 + 12, "{requests:#?}");
    assert_eq!(
        requests.iter().filter(|l| l.contains("\" 401 ")).count(),
        1,
        "{requests:#?}"
    );
}

#[tokio::test]
async fn identity_token_uses_the_refresh_token_grant() {
    let r = Registry::start(Mode::Token);
    r.seed(&Image::random(), "acme/app", "1.0.0");
    let cfg = serde_json::json!({"auths": {(r.host.clone()): {"identitytoken": crate::support::registry::REFRESH_TOKEN}}});
    let cfg_dir = docker_config(r.dir.path(), cfg);
    let c = computed(
        &[format!("{}/acme/app", r.host)],
        vec![tag("1.0.0", false, None)],
    );
    let config = check_config(Some(&r), &[("DOCKER_CONFIG", cfg_dir.to_str().unwrap())]);
    let d = check::check(&c, None, &config).await.unwrap();
    assert_eq!(d[0].action, Action::Move);
    let token = r.token.as_ref().unwrap();
    assert_eq!(token.fetches().last().unwrap().0, "POST");
}

#[tokio::test]
async fn basic_auth_via_a_credential_helper_on_path_and_denial_names_source_and_scope() {
    let r = Registry::start(Mode::Basic);
    r.seed(&Image::random(), "acme/app", "1.0.0");
    let bin = r.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-tgtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\n[ \"$1\" = get ] || exit 2\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            r.host
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg_dir = docker_config(
        r.dir.path(),
        serde_json::json!({"credHelpers": {(r.host.clone()): "tgtest"}}),
    );
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let env = [
        ("DOCKER_CONFIG", cfg_dir.to_str().unwrap()),
        ("PATH", path.as_str()),
    ];
    let c = computed(
        &[format!("{}/acme/app", r.host)],
        vec![tag("1.0.0", true, None)],
    );
    let d = check::check(&c, None, &check_config(Some(&r), &env))
        .await
        .unwrap();
    assert_eq!(d[0].action, Action::Refuse);

    // Wrong password: the error says which source was used and which scope was asked, not the secret.
    let env = [
        ("TAGGUARD_USERNAME", USER),
        ("TAGGUARD_PASSWORD", "wrong-password-xyz"),
    ];
    let e = check::check(&c, None, &check_config(Some(&r), &env))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("registry {}: HEAD /v2/acme/app/manifests/1.0.0: 401: not allowed with credentials from TAGGUARD_USERNAME/TAGGUARD_PASSWORD, asking for scope \"repository:acme/app:pull\"", r.host)),
        "{text}"
    );
    assert!(
        !text.contains("wrong-password-xyz") && !format!("{e:?}").contains("wrong-password-xyz")
    );
}

#[tokio::test]
async fn tls_with_the_test_ca_over_http2_and_a_clear_error_without_it() {
    let r = Registry::start(Mode::Tls);
    let digest = r.seed(&Image::random(), "acme/app", "1.0.0");
    let c = computed(
        &[format!("{}/acme/app", r.host)],
        vec![tag("1.0.0", true, None), tag("2", false, None)],
    );
    let src = format!("{}/acme/app@{digest}", r.host);
    let d = check::check(&c, Some(&src_of(&src)), &check_config(Some(&r), &[]))
        .await
        .unwrap();
    assert_eq!(
        (d[0].action, d[1].action),
        (Action::Unchanged, Action::Create)
    );
    let requests = r.requests();
    assert!(
        requests
            .iter()
            .rev()
            .take(3)
            .all(|l| l.contains("HTTP/2.0")),
        "{requests:#?}"
    );

    let mut config = check_config(None, &[]);
    config.transport.ca_files.clear();
    // Loopback without a CA would be plain HTTP; point the client at HTTPS by naming a CA that
    // did not sign the registry's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_ca = crate::support::token_server::other_ca(other.path());
    config
        .transport
        .ca_files
        .insert(r.host.clone(), other_ca.clone());
    let e = check::check(&c, None, &config).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, PlanError::Registry(b) if matches!(**b, RegistryError::Tls { .. })),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "trusted CAs: system trust store + {}",
            other_ca.display()
        )),
        "{text}"
    );
    assert!(text.contains("--ca-file"), "{text}");
}

#[tokio::test]
async fn connection_refused_names_the_registry_and_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = computed(
        &[format!("127.0.0.1:{port}/acme/app")],
        vec![tag("1.0.0", true, None)],
    );
    let e = check::check(&c, None, &check_config(None, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "registry 127.0.0.1:{port}: HEAD /v2/acme/app/manifests/1.0.0: could not connect: connection refused (is the registry listening there?)"
        )
    );
}

/// The other credential stores: Docker's `credsStore` (a default helper for every host) and
/// podman's auth file. Each is the only source in its run; an authenticated lookup proves it was
/// used, and the debug log names it.
#[tokio::test]
async fn creds_store_and_podman_auth_file_are_credential_sources() {
    use base64::Engine as _;
    let r = Registry::start(Mode::Basic);
    r.seed(&Image::random(), "acme/app", "1.0.0");
    let bin = r.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-tgstore");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread -r server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = docker_config(r.dir.path(), serde_json::json!({"credsStore": "tgstore"}));
    let podman = r.dir.path().join("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &podman,
        serde_json::json!({"auths": {(r.host.clone()): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let c = computed(
        &[format!("{}/acme/app", r.host)],
        vec![tag("1.0.0", true, None)],
    );
    for env in [
        vec![
            ("DOCKER_CONFIG", store.to_str().unwrap()),
            ("PATH", path.as_str()),
        ],
        vec![("REGISTRY_AUTH_FILE", podman.to_str().unwrap())],
    ] {
        let d = check::check(&c, None, &check_config(Some(&r), &env))
            .await
            .unwrap_or_else(|e| panic!("{env:?}: {e}"));
        assert_eq!(d[0].action, Action::Refuse, "{env:?}");
    }
}
