//! The registry client through the real binary, against a real registry: other registries'
//! refusals exit 3, a wrong password is asked once per scope, a missing credential says where
//! tagguard looked. The client's own tests are in `crates/registry/tests/client/`.

/// Through the real binary, against a real registry behind a proxy that answers the release
/// tag's PUT as Docker Hub and ACR do: exit 3, the registry's refusal, not a credentials problem.
#[test]
fn docker_hub_and_acr_refusals_exit_3_as_the_registry_s_refusal() {
    use crate::support::cmd::push;
    use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
    use crate::support::git::project;
    use crate::support::registry::{Image, Mode, Registry};
    let bodies = [
        (
            403,
            r#"{"errors":[{"code":"DENIED","message":"tag is immutable: 1.0.0 cannot be overwritten"}]}"#,
        ),
        (
            409,
            r#"{"errors":[{"code":"DENIED","message":"The operation is disallowed on this registry, repository or manifest."}]}"#,
        ),
    ];
    for (status, body) in bodies {
        let r = Registry::start(Mode::Plain);
        let built = r.seed(&Image::random(), "acme/app", "build-1");
        let proxy = FaultProxy::start(&r.host, &[]);
        proxy.rule(Rule::new(
            Some("PUT"),
            "/v2/acme/app/manifests/1.0.0",
            Fault::status(status)
                .with_header("Content-Type", "application/json")
                .with_body(body.as_bytes()),
        ));
        let repo =
            project("version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n");
        let image = format!("{}/acme/app", proxy.host());
        let run = push(&repo, &image, &format!("{image}@{built}"))
            .args(["--timestamp=1700000000", "--git-tag", "v1.0.0"])
            .run()
            .code(3);
        let text = run.err_text();
        assert!(
            text.contains("the registry refuses to overwrite tag \"1.0.0\""),
            "{status}: {}",
            run.stderr
        );
        assert!(!text.contains("credentials"), "{status}: {}", run.stderr);
        assert_eq!(r.digest_of("acme/app", "1.0.0"), None, "{status}");
    }
}

/// A policy of six tags, committed in a fresh repository.
fn six_tag_repo() -> crate::support::git::Repo {
    let repo = crate::support::git::Repo::new();
    let tags: String = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|t| format!("  - \"{t}-{{{{ short_sha }}}}\"\n"))
        .collect();
    repo.write(".tagguard.yml", &format!("version: 1\ntags:\n{tags}"));
    repo.commit("policy");
    repo
}

/// Credentials are asked for once per scope: with a wrong password, six tags and one source cost
/// at most four token requests (counted at the token server as they arrive), and the token
/// endpoint's own words are shown.
#[test]
fn a_wrong_password_is_asked_once_per_scope_and_the_endpoint_s_words_are_shown() {
    use crate::support::cmd::tagguard;
    use crate::support::registry::{Image, Mode, Registry, USER};
    let r = Registry::start(Mode::Token);
    let built = r.seed(&Image::random(), "acme/src", "build-1");
    let token = r.token.as_ref().unwrap();
    let before = token.fetches().len();
    let repo = six_tag_repo();
    let run = tagguard(repo.path())
        .args([
            "push",
            &format!("--image={}/acme/app", r.host),
            &format!("--source={}/acme/src@{built}", r.host),
            "--timestamp=1700000000",
        ])
        .envs([
            ("TAGGUARD_USERNAME", USER),
            ("TAGGUARD_PASSWORD", "wrong-password-xyz"),
        ])
        .run()
        .code(1);
    let fetches = token.fetches()[before..].to_vec();
    assert!(
        !fetches.is_empty() && fetches.len() <= 4,
        "{} token requests: {fetches:?}",
        fetches.len()
    );
    let text = run.err_text();
    assert!(text.contains("bad credentials"), "{}", run.stderr);
    assert!(
        text.contains("credentials from TAGGUARD_USERNAME/TAGGUARD_PASSWORD"),
        "{}",
        run.stderr
    );
    assert!(!text.contains("wrong-password-xyz"), "{}", run.stderr);
}

/// With no credentials anywhere, the 401 says where tagguard looked and how to provide them. The
/// six lookups go out at once (no credentials: most likely an anonymous registry), each meets
/// the challenge, and the token for their one scope is still asked for once.
#[test]
fn without_credentials_the_401_says_where_tagguard_looked() {
    use crate::support::cmd::tagguard;
    use crate::support::registry::{Image, Mode, Registry};
    let r = Registry::start(Mode::Token);
    r.seed(&Image::random(), "acme/app", "build-1");
    let seeded = r.token.as_ref().unwrap().fetches().len();
    let home = tempfile::tempdir().unwrap();
    let repo = six_tag_repo();
    let run = tagguard(repo.path())
        .args([
            "check",
            &format!("--image={}/acme/app", r.host),
            "--timestamp=1700000000",
        ])
        .env("HOME", home.path())
        .run()
        .code(1);
    let fetches = r.token.as_ref().unwrap().fetches()[seeded..].to_vec();
    assert_eq!(fetches.len(), 1, "{fetches:#?}");
    // The message wraps at the terminal width: compare without whitespace.
    let text: String = run.err_text().split_whitespace().collect();
    for part in [
        "anonymous (no credentials found)",
        "tagguard looked for credentials in",
        "TAGGUARD_USERNAME/TAGGUARD_PASSWORD",
        "DOCKER_AUTH_CONFIG",
        &format!("{}", home.path().join(".docker/config.json").display()),
        "credHelpers",
        "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD",
    ] {
        let part: String = part.split_whitespace().collect();
        assert!(text.contains(&part), "{part}: {}", run.stderr);
    }
}
