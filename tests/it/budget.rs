//! The request budget of a push and of a fan-out, counted synchronously in the registry's own
//! access log (and the token service's): one challenge, one token per scope, one source,
//! lookups (or one tag list per repository in a fan-out), the writes, one read-back each.

use std::time::Duration;

use crate::support::cmd;
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};

/// Five tags, none of them floating, so no repository's tags are listed to place them. The
/// record for `audit` has a budget of its own (the last test), so these count the tags alone.
const POLICY: &str = "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: \"v{{ version }}\"\n    when: release\n  - sha-{{ short_sha }}\n  - sha-{{ sha }}\n  - template: edge\n    immutable: false\naudit:\n  record: false\n";

fn count(requests: &[String], method: &str, path: &str, status: &str) -> usize {
    requests
        .iter()
        .filter(|q| {
            q.starts_with(&format!("{method} "))
                && q.contains(path)
                && q.contains(&format!("\" {status}"))
        })
        .count()
}

/// A push of `source` to every one of `images` (one or more), as the budget counts it.
fn push(repo: &Repo, images: &[String], source: &str) -> crate::support::cmd::Run {
    let mut run = cmd::push(repo, &images[0], source)
        .args(["--git-tag", "v1.4.2", "--format", "json"])
        .args(["--timestamp=1700000000", "--settle", "0"])
        .env("TAGGUARD_USERNAME", USER)
        .env("TAGGUARD_PASSWORD", PASSWORD);
    for image in &images[1..] {
        run = run.args(["--image", image]);
    }
    run.run()
}

#[test]
fn a_retag_push_sends_one_challenge_one_token_per_scope_and_one_lookup_write_and_read_back_per_tag()
{
    let r = Registry::start(Mode::Token);
    let built = r.seed(&Image::random(), "acme/app", "build-1");
    let repo = project(POLICY);
    let token = r.token.as_ref().unwrap();
    let (before, tokens_before) = (r.requests().len(), token.fetches().len());
    let image = format!("{}/acme/app", r.host);
    let run = push(
        &repo,
        std::slice::from_ref(&image),
        &format!("{image}@{built}"),
    )
    .success();
    assert_eq!(run.json()["written"].as_array().unwrap().len(), 5);

    let requests = r.requests()[before..].to_vec();
    let fetches = token.fetches()[tokens_before..].to_vec();
    // One challenge: the first request learns the scheme, the others wait for it.
    assert_eq!(
        requests.iter().filter(|q| q.contains("\" 401 ")).count(),
        1,
        "{requests:#?}"
    );
    // One token per scope: pull for the source and the lookups, pull+push for the writes.
    assert!(fetches.len() <= 2, "{fetches:#?}");
    assert_eq!(
        count(&requests, "GET", "/manifests/sha256:", "200"),
        1,
        "{requests:#?}"
    );
    // Five lookups before deciding — no second lookup before the first phase's writes: a
    // same-repository retag copies nothing, so the plan's lookups are the last ones — and one
    // for `edge`, the later (mutable) phase, sent with the first phase's read-back; then one
    // read-back each.
    assert_eq!(
        count(&requests, "HEAD", "/manifests/", "404"),
        5 + 1,
        "{requests:#?}"
    );
    assert_eq!(
        count(&requests, "PUT", "/manifests/", "201"),
        5,
        "{requests:#?}"
    );
    assert_eq!(
        count(&requests, "HEAD", "/manifests/", "200"),
        5,
        "{requests:#?}"
    );
    assert_eq!(requests.len(), 1 + 1 + (5 + 1) + 5 + 5, "{requests:#?}");
}

#[test]
fn a_fan_out_to_new_repositories_lists_each_once_instead_of_looking_up_every_tag() {
    let r = Registry::start(Mode::Token);
    let built = r.seed(&Image::random(), "ci/build", "b1");
    let repo = project(POLICY);
    let token = r.token.as_ref().unwrap();
    let (before, tokens_before) = (r.requests().len(), token.fetches().len());
    // 20 repositories x 5 tags: more lookups than go out at once, so each repository's tags
    // are listed first.
    let n = 20;
    let images: Vec<String> = (0..n)
        .map(|k| format!("{}/fan/app{k:02}", r.host))
        .collect();
    let run = push(&repo, &images, &format!("{}/ci/build@{built}", r.host)).success();
    assert_eq!(run.json()["written"].as_array().unwrap().len(), 5 * n);

    let requests = r.requests()[before..].to_vec();
    let fetches = token.fetches()[tokens_before..].to_vec();
    assert_eq!(
        requests.iter().filter(|q| q.contains("\" 401 ")).count(),
        1,
        "{requests:#?}"
    );
    // A token for the source's pull, one pull+push per repository (its lookups, mounts and
    // writes share it; the list's pull is covered by it or is the same scope).
    assert!(
        fetches.len() <= 1 + 2 * n,
        "{} token requests: {fetches:#?}",
        fetches.len()
    );
    assert_eq!(
        count(&requests, "GET", "/manifests/sha256:", "200"),
        1,
        "{requests:#?}"
    );
    // One tag list per new repository (404: it does not exist yet), no lookup before deciding.
    assert_eq!(
        count(&requests, "GET", "/tags/list", "404"),
        n,
        "{requests:#?}"
    );
    // Content: config and layer mounted into every repository.
    let mounts = requests
        .iter()
        .filter(|q| q.starts_with("POST ") && q.contains("mount="))
        .count();
    assert_eq!(mounts, 2 * n, "{requests:#?}");
    // After a copy every tag is looked up right before its write (the issue-10 re-check),
    // written, and read back once.
    assert_eq!(
        count(&requests, "HEAD", "/manifests/", "404"),
        5 * n,
        "{requests:#?}"
    );
    assert_eq!(
        count(&requests, "PUT", "/manifests/", "201"),
        5 * n,
        "{requests:#?}"
    );
    assert_eq!(
        count(&requests, "HEAD", "/manifests/", "200"),
        5 * n,
        "{requests:#?}"
    );
}

#[test]
fn over_tls_every_request_of_a_push_goes_over_http2() {
    let r = Registry::start(Mode::Tls);
    let built = r.seed(&Image::random(), "acme/app", "build-1");
    let repo = project(POLICY);
    let before = r.requests().len();
    let image = format!("{}/acme/app", r.host);
    let ca = r.ca.clone().unwrap();
    cmd::push(&repo, &image, &format!("{image}@{built}"))
        .args([
            "--git-tag",
            "v1.4.2",
            "--timestamp=1700000000",
            "--settle",
            "0",
        ])
        .args(["--ca-file", ca.to_str().unwrap()])
        .run()
        .success();
    let requests = r.requests()[before..].to_vec();
    assert!(!requests.is_empty());
    // The registry offers h2 by ALPN: one connection carries every request at once.
    assert!(
        requests.iter().all(|q| q.contains(" HTTP/2.0")),
        "{requests:#?}"
    );
}

/// What recording a push for `audit` costs on a registry without the referrers API, once the
/// repository has a record already: the record's PUT, the referrers probe and the fallback
/// index's read at once, then the updated fallback index — two round trips, four requests, and
/// no lookup of the image (the push knows its descriptor).
/// Recording costs a push one round trip: what the record needs is read while the tags are
/// written, and the record is put while the last write is read back; only the fallback index,
/// which must name a record already there, is put after. Proven causally through a proxy:
/// the tag's write is held until the record's reads arrive, and its read-back until the
/// record's PUT arrives — a push that recorded after its writes would see them answered 400.
#[test]
fn recording_reads_beside_the_writes_and_puts_the_record_during_the_read_back() {
    let r = Registry::start(Mode::Plain);
    let proxy = FaultProxy::start(&r.host, &[]);
    let image = format!("{}/acme/app", proxy.host());
    let policy = POLICY.replace("audit:\n  record: false\n", "");
    let first = r.seed(&Image::random(), "acme/app", "build-1");
    push(
        &project(&policy),
        std::slice::from_ref(&image),
        &format!("{image}@{first}"),
    )
    .success();
    let built = r.seed(&Image::random(), "acme/app", "build-2");
    let hex = &built["sha256:".len()..];
    let limit = Duration::from_secs(10);
    let tag = "/v2/acme/app/manifests/second-.*";
    proxy.rule(Rule::new(
        Some("PUT"),
        tag,
        Fault::HoldUntil {
            method: "GET".into(),
            path: format!("/v2/acme/app/manifests/sha256-{hex}"),
            limit,
        },
    ));
    proxy.rule(
        Rule::new(
            Some("HEAD"),
            tag,
            Fault::HoldUntil {
                method: "PUT".into(),
                path: "/v2/acme/app/manifests/sha256:.*".into(),
                limit,
            },
        )
        .from(2),
    );
    let before = proxy.requests().len();
    let run = push(
        &project("version: 1\ntags:\n  - second-{{ short_sha }}\n"),
        std::slice::from_ref(&image),
        &format!("{image}@{built}"),
    );
    let run = run.success();
    assert_eq!(
        run.json()["findings"],
        serde_json::json!([]),
        "{}",
        run.stdout
    );
    let lines = proxy.lines()[before..].to_vec();
    let record: Vec<&String> = lines
        .iter()
        .filter(|q| {
            q.contains("/referrers/")
                || q.contains(&format!("/manifests/sha256-{hex}"))
                || (q.starts_with("PUT ") && q.contains("/manifests/sha256:"))
                || q.contains("/blobs/")
        })
        .collect();
    // The referrers probe, the fallback index, the empty blob's HEAD; the record; the index.
    assert_eq!(record.len(), 5, "{lines:#?}");
    let at = |prefix: &str| lines.iter().position(|q| q.starts_with(prefix)).unwrap();
    assert!(
        at(&format!("PUT /v2/acme/app/manifests/sha256-{hex}"))
            > at("PUT /v2/acme/app/manifests/sha256:"),
        "the index names a record already there: {lines:#?}"
    );
    assert!(
        !lines.contains(&format!("HEAD /v2/acme/app/manifests/{built}")),
        "the push knows the image's descriptor: {lines:#?}"
    );
}
