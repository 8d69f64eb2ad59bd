//! `tagguard audit`: against a real registry (records through the fallback tag scheme, which
//! CNCF distribution 2.8 needs), and a stub for the referrers API it does not have.

use std::collections::BTreeSet;

use chrono::DateTime;
use serde_json::{Value, json};
use tagguard::audit::{RecordMeta, Subject, Target, write_records, write_records_for};
use tagguard_registry::{Digest, RegistryClient};

use crate::support::client::check_config;
use crate::support::cmd::{Run, push, tagguard};
use crate::support::git::{Repo, project};
use crate::support::http::{Response, Server};
use crate::support::registry::{Image, Mode, Registry};

mod index;

const POLICY: &str = r#"version: 1
tags:
  - template: "{{ version }}"
    when: release
  - template: "{{ major }}.{{ minor }}"
    when: stable-release
    floating: minor
  - template: "{{ major }}"
    when: { version: ">=1.0.0" }
    floating: major
  - template: latest
    when: stable-release
    floating: latest
  - template: "sha-{{ short_sha }}"
"#;

const VERSION: &str = "org.opencontainers.image.version";
const REVISION: &str = "org.opencontainers.image.revision";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn built(version: &str, commit: &str) -> Image {
    Image::with_labels(json!({ VERSION: version, REVISION: commit }))
}

fn audit(repo: &Repo, image: &str) -> Run {
    tagguard(repo.path())
        .args(["audit", "--image", image, "--format", "json"])
        .run()
}

/// What tagguard's push does for a release: push the build, then record what it wrote.
/// A release pushed by `tagguard push`, which records what it wrote beside the image (the
/// registry here has no referrers API, so through the fallback tag).
fn release(r: &Registry, repo: &Repo, image: &str, version: &str) {
    let build = built(version, &repo.head());
    let digest = r.seed(&build, "acme/app", &format!("build-{version}"));
    let run = push(repo, image, &format!("{image}@{digest}"))
        .args(["--git-tag", &format!("v{version}"), "--format", "json"])
        .args(["--timestamp=1700000000"])
        .run()
        .success();
    let report = run.json();
    assert_eq!(report["written"].as_array().unwrap().len(), 5, "{report}");
    assert_eq!(
        report["findings"],
        json!([]),
        "the record was written: {report}"
    );
    let fallback = format!("sha256-{}", &digest["sha256:".len()..]);
    assert!(
        r.digest_of("acme/app", &fallback).is_some(),
        "the fallback tag lists the record"
    );
}

fn found(run: &Run) -> BTreeSet<(String, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let subject = f["subject"].as_str().unwrap();
            let code = f["code"].as_str().unwrap();
            (
                subject.rsplit(':').next().unwrap().to_owned(),
                code.strip_prefix("tagguard::audit::").unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn writes_outside_tagguard_are_found_and_tagguards_own_are_not() {
    let r = Registry::start(Mode::Plain);
    let image = format!("{}/acme/app", r.host);
    let repo = Repo::new();
    repo.write(".tagguard.yml", POLICY);
    let first = repo.commit("policy");
    release(&r, &repo, &image, "1.0.0");
    repo.write("src.txt", "fix");
    let second = repo.commit("fix");
    release(&r, &repo, &image, "1.0.1");
    let (sha1, sha2) = (
        format!("sha-{}", &first[..7]),
        format!("sha-{}", &second[..7]),
    );

    // The records are beside the images: one fallback tag per image (no referrers API here).
    let tags = r.tags_of("acme/app");
    let fallback: Vec<&String> = tags.iter().filter(|t| t.starts_with("sha256-")).collect();
    assert_eq!(fallback.len(), 2, "{tags:?}");

    let run = audit(&repo, &image).success();
    assert_eq!(run.json()["findings"], json!([]));
    assert_eq!(run.json()["images"][0]["records"], 10, "{}", run.stdout);

    // Outside tagguard: a release whose image says another version, a commit tag of another
    // commit, and two immutable tags overwritten (one by a rebuild of the same commit).
    r.seed(&built("2.9.9", &second), "acme/app", "3.0.0");
    r.seed(
        &built("1.0.1", "1111111111111111111111111111111111111111"),
        "acme/app",
        "sha-deadbee",
    );
    r.seed(&built("1.0.0", &first), "acme/app", "1.0.0");
    r.seed(&built("1.0.1", &second), "acme/app", &sha2);

    let run = audit(&repo, &image).code(3);
    let expected: BTreeSet<(String, String)> = [
        ("latest", "floating_behind"),
        ("3.0.0", "version_label"),
        ("sha-deadbee", "revision_label"),
        ("1.0.0", "moved"),
        (sha2.as_str(), "moved"),
    ]
    .iter()
    .map(|(t, k)| (t.to_string(), k.to_string()))
    .collect();
    assert_eq!(found(&run), expected, "{}", run.stdout);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    let about = |tag: &str| format!("{image}:{tag}");
    for f in &findings {
        assert_ne!(f["subject"], about("1.0.1"));
        assert_ne!(f["subject"], about(&sha1));
        assert_eq!(f["severity"], "refusal");
        assert!(!f["help"].as_str().unwrap().is_empty());
    }
    let message = |tag: &str| {
        findings
            .iter()
            .find(|f| f["subject"] == about(tag))
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let v3 = r.digest_of("acme/app", "3.0.0").unwrap();
    assert!(message("latest").contains(&format!("not 3.0.0@{v3}")));
    let moved = message("1.0.0");
    assert!(
        moved.contains(&format!(
            "holds {}",
            r.digest_of("acme/app", "1.0.0").unwrap()
        )),
        "{moved}"
    );
    assert!(
        moved.contains(&format!("from commit {first}")),
        "the record's commit: {moved}"
    );

    // The other formats say the same.
    let text = tagguard(repo.path())
        .args(["audit", "--image", &image])
        .run()
        .code(3);
    assert!(text.stdout.contains("5 findings"), "{}", text.stdout);
    let dotenv = tagguard(repo.path())
        .args(["audit", "--image", &image, "--format", "gitlab"])
        .run()
        .code(3);
    assert!(
        dotenv.stdout.contains("TAGGUARD_FINDINGS=5\n")
            && dotenv.stdout.contains("TAGGUARD_CLEAN=false\n")
            && dotenv.stdout.contains("TAGGUARD_STATUS=refused\n"),
        "{}",
        dotenv.stdout
    );
}

#[test]
fn github_format_writes_outputs_and_a_summary_table() {
    let r = Registry::start(Mode::Plain);
    let image = format!("{}/acme/app", r.host);
    let repo = project(POLICY);
    r.seed(&built("1.0.0", &repo.head()), "acme/app", "1.0.0");
    r.seed(&built("0.9.0", &repo.head()), "acme/app", "latest");
    let dir = tempfile::tempdir().unwrap();
    let (out, summary) = (dir.path().join("out"), dir.path().join("summary"));
    tagguard(repo.path())
        .args(["audit", "--image", &image, "--format", "github"])
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run()
        .code(3);
    let outputs = std::fs::read_to_string(out).unwrap();
    assert!(outputs.contains("clean<<"), "{outputs}");
    assert!(
        outputs.contains(&format!("\n{image}:latest\n")),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.contains(&format!("- **refused** `{image}:latest`: floating tag"))
            && summary.contains("(`tagguard::audit::floating_behind`)"),
        "{summary}"
    );
}

#[test]
fn help_text() {
    let dir = tempfile::tempdir().unwrap();
    let run = tagguard(dir.path())
        .args(["audit", "--help"])
        .run()
        .success();
    insta::assert_snapshot!("help-audit", run.stdout);
}

#[test]
fn no_images_and_unreachable_registries_are_errors_that_say_what_to_do() {
    let repo = project(POLICY);
    let run = tagguard(repo.path()).args(["audit"]).run().code(1);
    assert!(
        run.err_text().contains("tagguard::audit::no_images"),
        "{}",
        run.stderr
    );
    assert!(run.err_text().contains("pass --image"), "{}", run.stderr);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = tagguard(repo.path())
        .args(["audit", "--retries", "0", "--image"])
        .args([format!("127.0.0.1:{port}/acme/app")])
        .run()
        .code(1);
    assert!(
        run.err_text().contains("tagguard::audit::registry"),
        "{}",
        run.stderr
    );
}

/// A registry with the referrers API: `1.0.0` was moved from `old` (still tagged `sha-…`)
/// to `new`; `old`'s referrers hold tagguard's record of both tags.
struct Referrers {
    server: Server,
    old: Digest,
}

fn referrers_registry() -> Referrers {
    let config = json!({"config": {"Labels": {}}}).to_string().into_bytes();
    let config_digest = Digest::sha256_of(&config);
    let image = |n: u8| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest.to_string(), "size": config.len()},
            "layers": [], "annotations": {"n": n.to_string()}})
        .to_string()
        .into_bytes()
    };
    let (old_bytes, new_bytes) = (image(1), image(2));
    let (old, new) = (Digest::sha256_of(&old_bytes), Digest::sha256_of(&new_bytes));
    let record = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::sha256_of(b"record").to_string(), "size": 6,
            "artifactType": "application/vnd.tagguard.record.v1+json",
            "annotations": {"io.tagguard.record.tags": "1.0.0,sha-abcdef0",
                            "org.opencontainers.image.created": "2026-11-30T12:00:00Z"}}]});
    let empty = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": []});
    let (o, n) = (old.clone(), new.clone());
    let server = Server::start(move |req| {
        let manifest = |bytes: &Vec<u8>, d: &Digest| {
            Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", d.to_string())
                .body(if req.method == "HEAD" {
                    Vec::new()
                } else {
                    bytes.clone()
                })
        };
        let path = req.path().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/v2/acme/app/tags/list") => Response::new(200)
                .json(json!({"name": "acme/app", "tags": ["1.0.0", "sha-abcdef0"]})),
            (_, "/v2/acme/app/manifests/1.0.0") => manifest(&new_bytes, &n),
            (_, "/v2/acme/app/manifests/sha-abcdef0") => manifest(&old_bytes, &o),
            (_, p) if p == format!("/v2/acme/app/manifests/{o}") => manifest(&old_bytes, &o),
            (_, p) if p == format!("/v2/acme/app/manifests/{n}") => manifest(&new_bytes, &n),
            ("GET", p) if p == format!("/v2/acme/app/referrers/{o}") => Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .body(record.to_string().into_bytes()),
            ("GET", p) if p.starts_with("/v2/acme/app/referrers/") => Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .body(empty.to_string().into_bytes()),
            ("HEAD", p) if p.starts_with("/v2/acme/app/blobs/") => Response::new(200),
            ("GET", p) if p == format!("/v2/acme/app/blobs/{config_digest}") => {
                Response::new(200).body(config.clone())
            }
            ("PUT", p) if p.starts_with("/v2/acme/app/manifests/sha256:") => Response::new(201),
            _ => Response::new(404),
        }
    });
    Referrers { server, old }
}

#[test]
fn the_referrers_api_is_read_and_written_when_the_registry_has_it() {
    let stub = referrers_registry();
    let image = format!("{}/acme/app", stub.server.host());
    let repo = project(POLICY);
    let run = audit(&repo, &image).code(3);
    assert_eq!(
        found(&run),
        BTreeSet::from([("1.0.0".to_owned(), "moved".to_owned())]),
        "{}",
        run.stdout
    );
    let asked: Vec<String> = stub
        .server
        .requests()
        .iter()
        .filter(|q| q.path().contains("/referrers/"))
        .map(|q| q.target.clone())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked
            .iter()
            .all(|t| t.ends_with("?artifactType=application%2Fvnd.tagguard.record.v1%2Bjson")),
        "{asked:?}"
    );

    // Writing: the record goes in by digest, and no fallback tag is written.
    let before = stub.server.requests().len();
    let config = check_config(None, &[]);
    let client =
        RegistryClient::new(&stub.server.host(), &config.credentials, &config.transport).unwrap();
    let meta = RecordMeta {
        time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        commit: None,
        ci_run: None,
        adopted: Vec::new(),
    };
    let written = [("sha-abcdef0".to_owned(), stub.old.clone())];
    let report = runtime().block_on(write_records(&client, "acme/app", &written, &[], &meta));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.written[0].fallback_tag, None);
    let puts: Vec<String> = stub.server.requests()[before..]
        .iter()
        .filter(|q| q.method == "PUT")
        .map(|q| q.target.clone())
        .collect();
    assert_eq!(
        puts,
        [format!(
            "/v2/acme/app/manifests/{}",
            report.written[0].record
        )]
    );
    let body: Value = serde_json::from_slice(
        &stub.server.requests()[before..]
            .iter()
            .find(|q| q.method == "PUT")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(body["subject"]["digest"], stub.old.to_string());
    assert_eq!(
        body["annotations"]["io.tagguard.record.tags"],
        "sha-abcdef0"
    );

    // A push knows its images' descriptors: then no image is looked up before the record's PUT
    // (the empty blob is: the record's config and layer).
    let before = stub.server.requests().len();
    let target = Target {
        subject: Subject {
            digest: stub.old.clone(),
            media_type: body["subject"]["mediaType"].as_str().unwrap().to_owned(),
            size: body["subject"]["size"].as_u64().unwrap(),
        },
        tags: vec!["sha-abcdef0".to_owned()],
    };
    let again = runtime().block_on(write_records_for(&client, "acme/app", &[target], &meta));
    assert_eq!(again.written, report.written);
    let heads: Vec<String> = stub.server.requests()[before..]
        .iter()
        .filter(|q| q.method == "HEAD" && q.target.contains("/manifests/"))
        .map(|q| q.target.clone())
        .collect();
    assert!(heads.is_empty(), "{heads:?}");
}

#[test]
fn tag_pages_are_followed_and_each_tag_looked_up_once() {
    let config = json!({"config": {"Labels": {VERSION: "1.0.0"}}})
        .to_string()
        .into_bytes();
    let config_digest = Digest::sha256_of(&config);
    let image = |n: u8| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest.to_string(), "size": config.len()},
            "layers": [], "annotations": {"n": n.to_string()}})
        .to_string()
        .into_bytes()
    };
    let (one, two) = (image(1), image(2));
    let (d1, d2) = (Digest::sha256_of(&one), Digest::sha256_of(&two));
    let server = Server::start(move |req| {
        let manifest = |bytes: &Vec<u8>, d: &Digest| {
            Response::new(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", d.to_string())
                .body(if req.method == "HEAD" {
                    Vec::new()
                } else {
                    bytes.clone()
                })
        };
        let path = req.path().to_owned();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/v2/acme/app/tags/list") if req.query().is_empty() => Response::new(200)
                .header(
                    "Link",
                    r#"</v2/acme/app/tags/list?n=1&last=latest>; rel="next""#,
                )
                .json(json!({"tags": ["latest"]})),
            ("GET", "/v2/acme/app/tags/list") => {
                Response::new(200).json(json!({"tags": ["1.0.0"]}))
            }
            (_, "/v2/acme/app/manifests/latest") => manifest(&one, &d1),
            (_, "/v2/acme/app/manifests/1.0.0") => manifest(&two, &d2),
            (_, p) if p == format!("/v2/acme/app/manifests/{d2}") => manifest(&two, &d2),
            ("GET", p) if p == format!("/v2/acme/app/blobs/{config_digest}") => {
                Response::new(200).body(config.clone())
            }
            _ => Response::new(404),
        }
    });
    let repo = project(POLICY);
    let run = audit(&repo, &format!("{}/acme/app", server.host())).code(3);
    assert_eq!(
        found(&run),
        BTreeSet::from([("latest".to_owned(), "floating_behind".to_owned())]),
        "{}",
        run.stdout
    );
    assert_eq!(run.json()["images"][0]["tags"], 2);
    let requests = server.requests();
    let count = |prefix: &str| {
        requests
            .iter()
            .filter(|q| q.target.starts_with(prefix))
            .count()
    };
    assert_eq!(count("/v2/acme/app/tags/list"), 2);
    assert_eq!(count("/v2/acme/app/manifests/latest"), 1);
    assert_eq!(count("/v2/acme/app/manifests/1.0.0"), 1);
    // A version tag's manifest is read whole once (GET), not looked up and then read again.
    assert_eq!(count("/v2/acme/app/manifests/sha256:"), 0);
    assert_eq!(count("/v2/acme/app/blobs/"), 1);
}

#[test]
fn a_record_the_registry_refuses_is_reported_and_nothing_else_happens() {
    let image = Digest::sha256_of(b"an image");
    let d = image.clone();
    let server = Server::start(move |req| match req.method.as_str() {
        "HEAD" if req.path() == format!("/v2/acme/app/manifests/{d}") => Response::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .header("Docker-Content-Digest", d.to_string())
            .header("Content-Length", "8"),
        "HEAD" if req.path().starts_with("/v2/acme/app/blobs/") => Response::new(200),
        "PUT" => Response::new(403)
            .json(json!({"errors": [{"code": "DENIED", "message": "no artifacts here"}]})),
        _ => Response::new(404),
    });
    let config = check_config(None, &[]);
    let client =
        RegistryClient::new(&server.host(), &config.credentials, &config.transport).unwrap();
    let meta = RecordMeta {
        time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        commit: None,
        ci_run: None,
        adopted: Vec::new(),
    };
    let written = [("1.0.0".to_owned(), image.clone())];
    let report = runtime().block_on(write_records(&client, "acme/app", &written, &[], &meta));
    assert!(report.written.is_empty());
    assert_eq!(report.failed.len(), 1);
    let message = report.failed[0].to_string();
    assert!(
        message.starts_with(&format!(
            "could not record that tagguard wrote 1.0.0 at {image}"
        )),
        "{message}"
    );
    assert!(message.contains("no artifacts here"), "{message}");
    let puts: Vec<String> = server
        .requests()
        .iter()
        .filter(|q| q.method != "GET" && q.method != "HEAD")
        .map(|q| q.target.clone())
        .collect();
    assert_eq!(
        puts.len(),
        1,
        "one record PUT, no fallback tag after it failed: {puts:?}"
    );
}
