//! `tagguard push` against real registries, read back independently with skopeo.

use std::time::{Duration, Instant};

use crate::support::cmd::{push, tagguard};
use crate::support::fault_proxy::FaultProxy;
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, Registry, pulls_back};

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

fn writes(r: &Registry) -> Vec<String> {
    r.requests_with(&["PUT", "POST", "PATCH", "DELETE"])
}

#[test]
fn same_repository_retag_puts_manifests_only_and_reads_them_back() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build-1");
    // The tag writes alone: the record for `audit` (tests/it/audit.rs) is a write of its own.
    let repo = project(&format!("{POLICY}audit:\n  record: false\n"));
    let image = format!("{}/acme/app", r.host);
    let before = r.requests().len();
    let run = push(&repo, &image, &format!("{image}@{built}"))
        .args(["--git-tag", "v1.4.2", "--format", "json"])
        .run()
        .success();

    let requests: Vec<String> = r.requests().into_iter().skip(before).collect();
    let report = run.json();
    assert_eq!(report["verified"], true);
    let sha = format!("sha-{}", &repo.head()[..7]);
    for tag in ["1.4.2", "1.4", "1", "latest", sha.as_str()] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(built.as_str()),
            "{tag}"
        );
    }
    let blob_traffic: Vec<&String> = requests
        .iter()
        .filter(|q| !(q.contains("/manifests/") || q.contains("/tags/list")))
        .collect();
    assert!(
        blob_traffic.is_empty(),
        "no blob traffic for a same-repository retag: {blob_traffic:#?}"
    );
    let puts = requests.iter().filter(|q| q.starts_with("PUT ")).count();
    assert_eq!(puts, 5, "{requests:#?}");
    assert!(
        run.stderr.contains("pushed and verified 5 tag(s)"),
        "{}",
        run.stderr
    );

    // A re-run is a true no-op: every tag unchanged, no write request at all.
    let writes_before = writes(&r).len();
    let run = push(&repo, &image, &format!("{image}@{built}"))
        .args(["--git-tag", "v1.4.2", "--format", "json"])
        .run()
        .success();
    let json = run.json();
    let actions: Vec<&str> = json["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged"; 5]);
    assert_eq!(writes(&r).len(), writes_before, "a re-run must not write");
}

#[test]
fn a_refusal_writes_nothing_anywhere() {
    let r = Registry::start(Mode::Plain);
    let old = r.seed(&Image::random(), "acme/app", "1.4.2");
    let built = r.seed(&Image::random(), "ci/build", "42");
    let repo = project(POLICY);
    let images = format!("{0}/acme/app,{0}/acme/mirror", r.host);
    let tags_before = r.tags_of("acme/app");
    let writes_before = writes(&r).len();
    let run = push(&repo, &images, &format!("{}/ci/build:42", r.host))
        .args(["--git-tag", "v1.4.2"])
        .run()
        .code(3);
    assert!(
        run.stderr.contains(&format!(
            "refusing to move immutable tag {}/acme/app:1.4.2 from {old} to {built}",
            r.host
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert_eq!(
        writes(&r).len(),
        writes_before,
        "a refused push sends no write to any image"
    );
    assert_eq!(r.tags_of("acme/app"), tags_before);
    assert_eq!(
        r.digest_of("acme/app", "1.4.2").as_deref(),
        Some(old.as_str())
    );
    assert!(
        r.tags_of("acme/mirror").is_empty(),
        "the second image was not touched either"
    );
}

#[test]
fn dry_run_decides_but_sends_no_write() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "ci/build", "7");
    let repo = project(POLICY);
    let image = format!("{}/acme/app", r.host);
    let writes_before = writes(&r).len();
    let run = push(&repo, &image, &format!("{}/ci/build@{built}", r.host))
        .args(["--git-tag", "v2.0.0", "--dry-run", "--format", "json"])
        .run()
        .success();
    let report = run.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["written"], serde_json::json!([]));
    assert!(
        report["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["action"] == "create")
    );
    assert_eq!(writes(&r).len(), writes_before, "--dry-run sent a write");
    assert!(r.tags_of("acme/app").is_empty());
}

#[test]
fn another_repository_on_the_same_registry_mounts_blobs() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "ci/build", "7");
    let repo = project(POLICY);
    let image = format!("{}/acme/app", r.host);
    let before = r.requests().len();
    push(&repo, &image, &format!("{}/ci/build:7", r.host))
        .args(["--git-tag", "v1.0.0"])
        .run()
        .success();
    let requests: Vec<String> = r.requests().into_iter().skip(before).collect();
    let mounts = requests
        .iter()
        .filter(|q| q.starts_with("POST ") && q.contains("mount="))
        .count();
    assert_eq!(mounts, 2, "config and layer are mounted: {requests:#?}");
    assert!(
        !requests.iter().any(|q| q.starts_with("PATCH ")),
        "nothing uploaded: {requests:#?}"
    );
    assert_eq!(
        r.digest_of("acme/app", "1.0.0").as_deref(),
        Some(built.as_str())
    );
    assert_eq!(
        r.digest_of("acme/app", "latest").as_deref(),
        Some(built.as_str())
    );
}

#[test]
fn another_registry_gets_a_streamed_copy_with_the_same_digest() {
    let (a, b) = (Registry::start(Mode::Plain), Registry::start(Mode::Plain));
    let built = a.seed(&Image::sized(3 << 20), "ci/build", "7");
    let repo = project(POLICY);
    let image = format!("{}/acme/app", b.host);
    // Small chunks: the 3 MiB layer goes in several PATCH requests.
    push(&repo, &image, &format!("{}/ci/build:7", a.host))
        .args(["--git-tag", "v1.0.0", "--chunk-size", "1"])
        .run()
        .success();
    assert_eq!(
        b.digest_of("acme/app", "1.0.0").as_deref(),
        Some(built.as_str())
    );
    let patches = b.requests_with(&["PATCH"]).len();
    assert!(
        patches >= 3,
        "expected chunked upload, saw {patches} PATCH requests"
    );
    // skopeo can pull the whole image back from the target.
    pulls_back(&format!("{image}:1.0.0"), repo.path());
}

#[test]
fn multi_platform_index_keeps_every_digest() {
    let (a, b) = (Registry::start(Mode::Plain), Registry::start(Mode::Plain));
    let index = a.seed_index("ci/build", "multi");
    let repo = project(POLICY);
    push(
        &repo,
        &format!("{}/acme/app", b.host),
        &format!("{}/ci/build@{index}", a.host),
    )
    .args(["--git-tag", "v3.1.0"])
    .run()
    .success();
    assert_eq!(
        b.digest_of("acme/app", "3.1.0").as_deref(),
        Some(index.as_str())
    );
    // Same registry, same repository: the index is retagged as is.
    push(
        &repo,
        &format!("{}/ci/build", a.host),
        &format!("{}/ci/build:multi", a.host),
    )
    .args(["--git-tag", "v3.1.0"])
    .run()
    .success();
    assert_eq!(
        a.digest_of("ci/build", "latest").as_deref(),
        Some(index.as_str())
    );
}

#[test]
fn oci_layout_source_is_pushed_daemonlessly() {
    let r = Registry::start(Mode::Plain);
    let image = Image::random();
    let repo = project(POLICY);
    let target = format!("{}/acme/app", r.host);
    let source = format!("oci:{}:img", image.dir.path().display());
    push(&repo, &target, &source)
        .args(["--git-tag", "v0.1.0"])
        .run()
        .success();
    assert_eq!(
        r.digest_of("acme/app", "0.1.0").as_deref(),
        Some(image.digest.as_str())
    );
    assert_eq!(
        r.digest_of("acme/app", "0.1").as_deref(),
        Some(image.digest.as_str())
    );
    assert_eq!(
        r.digest_of("acme/app", "0"),
        None,
        "major zero does not float"
    );
    // The same layout again: unchanged, nothing written.
    let writes_before = writes(&r).len();
    push(&repo, &target, &source)
        .args(["--git-tag", "v0.1.0"])
        .run()
        .success();
    assert_eq!(writes(&r).len(), writes_before);
    // A layout with several images needs a name.
    let run = push(
        &repo,
        &target,
        &format!("oci:{}:nope", image.dir.path().display()),
    )
    .args(["--git-tag", "v0.1.0"])
    .run()
    .code(1);
    assert!(
        run.err_text().contains("no manifest named \"nope\""),
        "{}",
        run.stderr
    );
}

#[test]
fn floating_tags_only_move_forward_with_releases_out_of_order() {
    let r = Registry::start(Mode::Plain);
    let repo = project(POLICY);
    let image = format!("{}/acme/app", r.host);
    let release = |version: &str| -> String {
        let built = r.seed(&Image::random(), "ci/build", &version.replace('.', "-"));
        repo.commit(&format!("release {version}"));
        push(&repo, &image, &format!("{}/ci/build@{built}", r.host))
            .args(["--git-tag", &format!("v{version}")])
            .run()
            .success();
        built
    };
    let v200 = release("2.0.0");
    let v191 = release("1.9.1");
    let at = |tag: &str| r.digest_of("acme/app", tag);
    // Patching 1.9 after 2.0 must not steal latest (or 2); 1 and 1.9 are 1.9.1's.
    assert_eq!(at("latest"), Some(v200.clone()));
    assert_eq!(at("2"), Some(v200.clone()));
    assert_eq!(at("1"), Some(v191.clone()));
    assert_eq!(at("1.9"), Some(v191.clone()));
    let v201 = release("2.0.1");
    assert_eq!(at("latest"), Some(v201.clone()));
    assert_eq!(at("2"), Some(v201.clone()));
    assert_eq!(at("2.0"), Some(v201));
    assert_eq!(at("1"), Some(v191));
    assert_eq!(at("2.0.0"), Some(v200));

    // check shows the same skip, with the release that holds the tag.
    let built = r.seed(&Image::random(), "ci/build", "1-9-2");
    repo.commit("release 1.9.2");
    let run = tagguard(repo.path())
        .args([
            "check",
            "--image",
            &image,
            "--source",
            &format!("{}/ci/build@{built}", r.host),
            "--git-tag",
            "v1.9.2",
            "--format",
            "json",
        ])
        .run()
        .success();
    let latest = run.json()["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["tag"] == "latest")
        .unwrap()
        .clone();
    assert_eq!(latest["action"], "skip");
    assert_eq!(latest["held_by"], "2.0.1");
}

#[test]
fn a_missing_source_is_an_error_naming_it() {
    let r = Registry::start(Mode::Plain);
    let repo = project(POLICY);
    let run = push(
        &repo,
        &format!("{}/acme/app", r.host),
        &format!("{}/ci/build:nope", r.host),
    )
    .run()
    .code(1);
    assert!(
        run.err_text()
            .contains(&format!("no such image in registry {}", r.host)),
        "{}",
        run.stderr
    );
}

/// What a real registry cannot show: Harbor's own immutability refusing the write. The push
/// reports it as a refusal with the registry's message and exits 3.
#[test]
fn the_registry_refusing_a_write_is_a_refusal() {
    use crate::support::http::{Response, Server};
    use sha2::Digest as _;
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[]}"#;
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(manifest));
    let d = digest.clone();
    let s = Server::start(move |req| {
        let path = req.path();
        match (req.method.as_str(), path) {
            ("GET" | "HEAD", p) if p.ends_with(&format!("/manifests/{d}")) => Response::new(200)
                .header("Docker-Content-Digest", d.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.to_vec()),
            ("HEAD", _) => Response::new(404),
            ("PUT", "/v2/app/manifests/1.0.0") => Response::new(412).json(serde_json::json!({"errors": [{
                "code": "PRECONDITION",
                "message": "Failed to process request due to 'app:1.0.0' configured as immutable."
            }]})),
            ("PUT", _) => Response::new(201).header("Docker-Content-Digest", d.clone()),
            _ => Response::new(404),
        }
    });
    let repo = project("version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n");
    let image = format!("{}/app", s.host());
    let run = push(&repo, &image, &format!("{image}@{digest}"))
        .args(["--git-tag", "v1.0.0"])
        .run()
        .code(3);
    assert!(
        run.err_text()
            .contains("the registry refuses to overwrite tag \"1.0.0\""),
        "{}",
        run.stderr
    );
    assert!(
        run.err_text().contains("configured as immutable"),
        "{}",
        run.stderr
    );
}

/// A registry that declines a cross-repository mount answers 202 with an upload session; the
/// blob is then uploaded into that session (a real registry mounts whenever it can, so a stub
/// shows the fallback).
#[test]
fn a_declined_mount_falls_back_to_uploading() {
    use crate::support::http::{Response, Server};
    use sha2::Digest as _;
    use std::sync::{Arc, Mutex};
    let sha = |b: &[u8]| format!("sha256:{:x}", sha2::Sha256::digest(b));
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = vec![7u8; 300_000];
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        sha(&config), config.len(), sha(&layer), layer.len()
    )
    .into_bytes();
    let digest = sha(&manifest);
    let uploaded: Arc<Mutex<Vec<u8>>> = Arc::default();
    let tagged: Arc<Mutex<Vec<String>>> = Arc::default();
    let (m, d, c, l, up, tg) = (
        manifest.clone(),
        digest.clone(),
        config.clone(),
        layer.clone(),
        uploaded.clone(),
        tagged.clone(),
    );
    let s = Server::start(move |req| {
        let path = req.path().to_owned();
        let manifest_response = || {
            Response::new(200)
                .header("Docker-Content-Digest", d.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(m.clone())
        };
        match req.method.as_str() {
            "GET" | "HEAD" if path == format!("/v2/ci/build/manifests/{d}") => manifest_response(),
            "HEAD" if path.starts_with("/v2/acme/app/manifests/") => {
                let tag = path.rsplit('/').next().unwrap().to_owned();
                if tg.lock().unwrap().contains(&tag) {
                    manifest_response()
                } else {
                    Response::new(404)
                }
            }
            "HEAD" if path.contains("/blobs/") => Response::new(404),
            "GET" if path.starts_with("/v2/ci/build/blobs/") => {
                let body = if path.ends_with(&sha(&c)) {
                    c.clone()
                } else {
                    l.clone()
                };
                Response::new(200).body(body)
            }
            "POST" if path == "/v2/acme/app/blobs/uploads/" => Response::new(202).header(
                "Location",
                format!("/v2/acme/app/blobs/uploads/s{}", fastrand::u32(..)),
            ),
            "PATCH" => {
                up.lock().unwrap().extend_from_slice(&req.body);
                Response::new(202).header("Location", path.clone())
            }
            "PUT" if path.contains("/blobs/uploads/") => {
                up.lock().unwrap().extend_from_slice(&req.body);
                Response::new(201)
            }
            "PUT" if path.starts_with("/v2/acme/app/manifests/") => {
                tg.lock()
                    .unwrap()
                    .push(path.rsplit('/').next().unwrap().to_owned());
                Response::new(201).header("Docker-Content-Digest", d.clone())
            }
            "GET" if path.ends_with("/tags/list") => {
                Response::new(200).json(serde_json::json!({"tags": []}))
            }
            _ => Response::new(404),
        }
    });
    let repo = Repo::new();
    // The blobs of the image alone: the record for `audit` (its empty config blob) is off.
    repo.write(
        ".tagguard.yml",
        "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\naudit:\n  record: false\n",
    );
    repo.commit("policy");
    push(
        &repo,
        &format!("{}/acme/app", s.host()),
        &format!("{}/ci/build@{digest}", s.host()),
    )
    .args(["--git-tag", "v1.0.0"])
    .run()
    .success();
    let requests = s.requests();
    let mounts = requests
        .iter()
        .filter(|r| r.method == "POST" && r.target.contains("mount="))
        .count();
    assert_eq!(mounts, 2, "a mount was asked for the config and the layer");
    let sent = uploaded.lock().unwrap().len();
    assert_eq!(
        sent,
        config.len() + layer.len(),
        "both blobs were uploaded into the sessions the registry opened"
    );
    assert_eq!(*tagged.lock().unwrap(), ["1.0.0"]);
}

/// `--settle`: a push that creates an immutable tag waits the settle time before its read-back;
/// a run that creates nothing immutable does not wait.
#[test]
fn a_new_immutable_tag_settles_before_it_is_claimed() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build-1");
    let proxy = FaultProxy::start(&r.host, &[]);
    let repo = project(POLICY);
    let image = format!("{}/acme/app", proxy.host());
    let source = format!("{image}@{built}");
    push(&repo, &image, &source)
        .args(["--git-tag", "v1.4.2", "--settle", "1"])
        .run()
        .success();
    // The wait, timed where it happens: the tag's read-back came at least the settle time
    // after its write reached the registry.
    let tag = "/v2/acme/app/manifests/1.4.2";
    let seen = proxy.requests();
    let written = seen
        .iter()
        .position(|s| s.method == "PUT" && s.path() == tag)
        .expect("the tag was written");
    let read_back = seen[written..]
        .iter()
        .find(|s| s.method != "PUT" && s.path() == tag)
        .expect("the tag was read back");
    let waited = read_back.at - seen[written].at;
    let settle = Duration::from_secs(1);
    assert!(waited >= settle, "read back after {waited:?}");
    // Again: everything unchanged, nothing written, nothing to settle. The settle time is a
    // minute: a run that waited it would take that long.
    let puts = proxy.count("PUT", ".*");
    let started = Instant::now();
    push(&repo, &image, &source)
        .args(["--git-tag", "v1.4.2", "--settle", "60"])
        .run()
        .success();
    let minute = Duration::from_secs(60);
    assert!(started.elapsed() < minute, "waited the settle time");
    assert_eq!(proxy.count("PUT", ".*"), puts, "nothing was written");
}

/// When the lookup before the write and the write's acknowledgement are further apart than the
/// settle time, the push cannot rule out that another push claimed the tag too: exit 1, naming
/// the tag and what it holds.
#[test]
fn a_write_slower_than_the_settle_time_is_not_claimed() {
    let r = Registry::start(Mode::Plain);
    let built = r.seed(&Image::random(), "acme/app", "build-1");
    let repo = project(POLICY);
    let image = format!("{}/acme/app", r.host);
    let run = push(&repo, &image, &format!("{image}@{built}"))
        .args([
            "--git-tag",
            "v1.4.2",
            "--settle",
            "0.000001",
            "--format",
            "json",
        ])
        .run()
        .code(1);
    let report = run.json();
    assert_eq!(
        report["races"],
        serde_json::json!([
            format!("{image}:1.4.2"),
            format!("{image}:sha-{}", &repo.head()[..7])
        ])
    );
    assert!(
        run.err_text().contains(&format!(
            "{image}:1.4.2 holds this push's image {built}, but"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.err_text()
            .contains("another push of this tag may have claimed success too"),
        "{}",
        run.stderr
    );
    // Floating tags wait for the immutable phase to be proven.
    assert_eq!(r.digest_of("acme/app", "latest"), None);
}
