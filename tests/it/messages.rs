//! Say what is known: wrong credentials in one message, a registry's own words (an error
//! body's `detail`, "no space left on device") in the message, and an acknowledged write the
//! read-back does not find named as such — neither blamed on another writer as a fact, nor
//! counted as verified.

use crate::support::cmd::{self, Run, tagguard};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, Registry, USER};

const POLICY: &str = "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: latest\n    floating: latest\n    when: stable-release\n";

fn push(repo: &Repo, host: &str, built: &str, extra: &[&str]) -> Run {
    let image = format!("{host}/acme/app");
    cmd::push(repo, &image, &format!("{image}@{built}"))
        .args(["--git-tag", "v1.0.0", "--format", "json"])
        .args(["--retries=1", "--timeout=5"])
        .args(extra)
        .run()
}

/// A registry with an image to push, behind a proxy that answers the write of `1.0.0` with
/// `fault`.
fn faulty_tag_write(fault: Fault) -> (Registry, String, FaultProxy) {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build");
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(put_1_0_0(fault));
    (r, built, proxy)
}

fn put_1_0_0(fault: Fault) -> Rule {
    Rule::new(Some("PUT"), "/v2/acme/app/manifests/1.0.0", fault)
}

#[test]
fn wrong_credentials_are_one_message_naming_the_registry_the_source_and_what_to_do() {
    let r = Registry::start(Mode::Basic);
    let repo = project(POLICY);
    let run = tagguard(repo.path())
        .args(["check", "--git-tag", "v1.0.0", "--format", "json"])
        .args(["--image", &format!("{}/acme/app", r.host)])
        .args(["--source", &format!("{}/acme/app:build", r.host)])
        .env("TAGGUARD_USERNAME", USER)
        .env("TAGGUARD_PASSWORD", "wrong-password-xyz")
        .run()
        .code(1);
    assert!(!run.stderr.contains("not asking again"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong-password-xyz"));
    let report = run.json();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    let message = findings[0]["message"].as_str().unwrap();
    assert_eq!(
        message.matches("registry ").count(),
        1,
        "one message, not a chain: {message}"
    );
    assert!(
        message.starts_with(&format!("registry {}: ", r.host))
            && message.contains(
                "401: not allowed with credentials from TAGGUARD_USERNAME/TAGGUARD_PASSWORD"
            ),
        "{message}"
    );
    let help = findings[0]["help"].as_str().unwrap();
    assert!(help.contains("were not accepted: check them"), "{help}");
}

#[test]
fn a_registrys_error_detail_reaches_the_message() {
    let (_r, built, proxy) = faulty_tag_write(Fault::status(500).with_body(
        br#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"filesystem: write /var/lib/registry/docker/registry/v2/repositories/acme/app/_manifests/tags/1.0.0/current/link: no space left on device"}]}"#,
    ));
    let run = push(&project(POLICY), &proxy.host(), &built, &[]).code(1);
    let report = run.json();
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("500: UNKNOWN: unknown error (filesystem: write")
            && message.ends_with("no space left on device)"),
        "{message}"
    );
}

#[test]
fn an_acknowledged_write_the_registry_did_not_store_is_named_as_such() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build");
    // The registry answers 201 with this push's digest, and stores nothing.
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(put_1_0_0(
        Fault::status(201).with_header("Docker-Content-Digest", built.clone()),
    ));
    let run = push(&project(POLICY), &proxy.host(), &built, &["--settle", "0"]).code(1);
    let subject = format!("{}/acme/app:1.0.0", proxy.host());
    let report = run.json();
    assert_eq!(
        report["findings"][0]["message"],
        format!(
            "the registry acknowledged the write of {subject} at {built} but now holds nothing: another writer changed it, or the registry did not store it"
        )
    );
    assert_eq!(
        report["written"],
        serde_json::json!([{"image": format!("{}/acme/app", proxy.host()), "tag": "1.0.0", "digest": built, "verified": false}])
    );
    assert_eq!(report["races"], serde_json::json!([subject]));
    assert_eq!(r.digest_of("acme/app", "1.0.0"), None);
    assert_eq!(
        r.digest_of("acme/app", "latest"),
        None,
        "a later phase was written"
    );
}
