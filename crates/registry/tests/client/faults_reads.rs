//! The registry client's reads under injected faults (a fault proxy in front of a real registry
//! and its token server): lookups, manifest and blob reads, token requests and tag lists retried
//! through transient faults; persistent ones fail in bounded time, naming the registry, the
//! request and the cause; cut-off downloads resume; a stalled registry is waited for once.
//! RELIABILITY.md has the matrix.

use std::time::{Duration, Instant};

use tagguard_registry::{Digest, RegistryClient, RegistryError};

use crate::rig::{MANIFEST, Rig, assert_retried_once, transient};
use crate::support::client::{RETRIES, RETRY_AFTER_CAP, TIMEOUT, credentials, fast_transport};
use crate::support::fault_proxy::Fault;
use crate::support::http::{Response, Server};
use crate::support::registry::{Image, Mode};

#[tokio::test]
async fn manifest_head_is_retried_through_transient_faults() {
    let rig = Rig::start(Mode::Plain);
    for (name, fault) in transient(false) {
        let before = rig.inject("HEAD", MANIFEST, fault, 1);
        let head = rig
            .client()
            .head_manifest("acme/app", "1.0.0")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("the tag exists");
        assert_eq!(head.digest.to_string(), rig.digest, "{name}");
        assert_retried_once(name, &rig.attempts("HEAD", MANIFEST, before));
    }
}

#[tokio::test]
async fn manifest_get_is_retried_through_transient_faults_and_body_faults() {
    let rig = Rig::start(Mode::Plain);
    for (name, fault) in transient(true) {
        let before = rig.inject("GET", MANIFEST, fault, 1);
        let m = rig
            .client()
            .get_manifest("acme/app", "1.0.0")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("the tag exists");
        assert_eq!(m.digest.to_string(), rig.digest, "{name}");
        assert_eq!(Digest::sha256_of(&m.bytes).to_string(), rig.digest);
        assert_retried_once(name, &rig.attempts("GET", MANIFEST, before));
    }
}

#[tokio::test]
async fn token_requests_are_retried_through_transient_faults() {
    let rig = Rig::start(Mode::Token);
    for (name, fault) in transient(true) {
        let before = rig.inject("GET", "/token", fault, 1);
        let head = rig
            .client()
            .head_manifest("acme/app", "1.0.0")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("the tag exists");
        assert_eq!(head.digest.to_string(), rig.digest, "{name}");
        assert_retried_once(name, &rig.attempts("GET", "/token", before));
    }
}

/// Persistent faults: bounded attempts, bounded time, and an error that names the registry, the
/// request and the cause.
#[tokio::test]
async fn persistent_faults_fail_in_bounded_time_naming_registry_request_and_cause() {
    let rig = Rig::start(Mode::Plain);
    let host = rig.proxy.host();
    let cases: Vec<(&str, Fault, u32, &str)> = vec![
        (
            "503",
            Fault::status(503),
            1 + RETRIES,
            "unexpected status 503",
        ),
        (
            "429 with a Retry-After beyond the cap",
            Fault::status(429).with_header("Retry-After", "3600"),
            1 + RETRIES,
            "unexpected status 429",
        ),
        (
            "400 with a malformed JSON error body",
            Fault::status(400)
                .with_header("Content-Type", "application/json")
                .with_body(b"{\"errors\": [{\"code\": 7,"),
            1,
            "unexpected status 400",
        ),
        ("stall", Fault::Stall, 1 + RETRIES, "timed out"),
        (
            "reset",
            Fault::Reset,
            1 + RETRIES,
            "GET /v2/acme/app/manifests/1.0.0: ",
        ),
        (
            "truncated body",
            Fault::TruncateBody,
            1 + RETRIES,
            "reading the body",
        ),
    ];
    for (name, fault, attempts, cause) in cases {
        let before = rig.inject("GET", MANIFEST, fault, usize::MAX);
        let start = Instant::now();
        let e = rig
            .client()
            .get_manifest("acme/app", "1.0.0")
            .await
            .expect_err(name);
        let took = start.elapsed();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("registry {host}: GET {MANIFEST}: ")),
            "{name}: {text}"
        );
        assert!(text.contains(cause), "{name}: {text}");
        assert_eq!(
            rig.attempts("GET", MANIFEST, before).len(),
            attempts as usize,
            "{name}"
        );
        // Every attempt may use its whole timeout, every wait its cap; nothing more.
        let bound = TIMEOUT * attempts + RETRY_AFTER_CAP * RETRIES + Duration::from_millis(500);
        assert!(took < bound, "{name}: took {took:?}, bound {bound:?}");
    }
    let stall = rig.inject("HEAD", MANIFEST, Fault::Stall, usize::MAX);
    let e = rig
        .client()
        .head_manifest("acme/app", "1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "registry {host}: HEAD {MANIFEST}: timed out: nothing moved for 0.6s (--timeout; --connect-timeout while connecting)"
        )
    );
    assert_eq!(
        rig.attempts("HEAD", MANIFEST, stall).len(),
        1 + RETRIES as usize
    );
}

#[tokio::test]
async fn a_lying_digest_is_caught_where_there_are_bytes_or_a_digest_to_compare() {
    let rig = Rig::start(Mode::Plain);
    let lie = format!("sha256:{}", "b".repeat(64));
    rig.inject("GET", MANIFEST, Fault::WrongDigest(lie.clone()), usize::MAX);
    let e = rig
        .client()
        .get_manifest("acme/app", "1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("expected {lie}, got {}", rig.digest)),
        "{e}"
    );

    // HEAD by digest: the answer must name the digest asked for.
    let by_digest = format!("/v2/acme/app/manifests/{}", rig.digest);
    rig.inject(
        "HEAD",
        &by_digest,
        Fault::WrongDigest(lie.clone()),
        usize::MAX,
    );
    let e = rig
        .client()
        .head_manifest("acme/app", &rig.digest)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");

    // A header that is no digest at all.
    rig.inject(
        "HEAD",
        MANIFEST,
        Fault::WrongDigest("md5:nope".into()),
        usize::MAX,
    );
    let e = rig
        .client()
        .head_manifest("acme/app", "1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("Docker-Content-Digest"), "{e}");
}

/// Reads a whole blob through [`RegistryClient::get_blob`].
async fn download(
    c: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> Result<Vec<u8>, RegistryError> {
    let mut stream = c.get_blob(repository, digest).await?;
    let mut out = Vec::new();
    while let Some(piece) = stream.chunk().await? {
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

/// A blob download cut off mid-body (a reset, a truncation) resumes where it stopped, with a
/// `Range` request, within the retries; the bytes are the blob's.
#[tokio::test]
async fn a_cut_off_blob_download_resumes_with_range() {
    let rig = Rig::start(Mode::Plain);
    let image = Image::sized(3 << 20);
    let d = rig.registry.seed(&image, "acme/big", "1");
    let c = rig.client();
    let manifest = c.get_manifest("acme/big", &d).await.unwrap().unwrap();
    let parts = tagguard_registry::parse_manifest(&manifest.bytes).unwrap();
    let layer = parts.blobs.iter().max_by_key(|b| b.size).unwrap().clone();
    let path = format!("/v2/acme/big/blobs/{}", layer.digest);
    for fault in [Fault::ResetMidBody, Fault::TruncateBody] {
        let before = rig.inject("GET", &path, fault.clone(), 1);
        let bytes = download(&rig.client(), "acme/big", &layer.digest)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(bytes.len() as u64, layer.size, "{fault:?}");
        assert_eq!(Digest::sha256_of(&bytes), layer.digest, "{fault:?}");
        let tries = rig.attempts("GET", &path, before);
        assert_eq!(tries.len(), 2, "{fault:?}");
        let range = tries[1].header("range").unwrap_or_default().to_owned();
        assert!(
            range.starts_with("bytes=") && range != "bytes=0-",
            "{fault:?}: resumed with {range:?}"
        );
    }
    // Cut off on every try: fails after the retries, naming the request.
    let before = rig.inject("GET", &path, Fault::ResetMidBody, usize::MAX);
    let e = download(&rig.client(), "acme/big", &layer.digest)
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&path), "{e}");
    assert_eq!(
        rig.attempts("GET", &path, before).len(),
        1 + RETRIES as usize
    );
}

/// A tag list whose `Link: rel="next"` never ends is followed up to the page cap, and the error
/// names the cap.
#[tokio::test]
async fn an_endless_tag_list_stops_at_the_page_cap() {
    let s = Server::start(|req| {
        let n: u64 = req
            .query()
            .iter()
            .find(|(k, _)| k == "last")
            .map_or(0, |(_, v)| v.parse().unwrap_or(0));
        Response::new(200)
            .header(
                "Link",
                format!(r#"</v2/acme/app/tags/list?n=1&last={}>; rel="next""#, n + 1),
            )
            .json(serde_json::json!({"name": "acme/app", "tags": [format!("t{n}")]}))
    });
    let c = RegistryClient::new(&s.host(), &credentials(&[]), &fast_transport()).unwrap();
    let e = c.list_tags("acme/app").await.unwrap_err();
    assert!(matches!(e, RegistryError::Pagination { .. }), "{e}");
    assert!(e.to_string().contains("past 500 pages"), "{e}");
    assert_eq!(s.requests().len(), 500);
}

/// A registry that stalls every lookup: six lookups at once (all sent while the auth scheme is
/// unknown; after their first tries timed out, one of them retries while the others wait) all
/// end within one request's worst case, not six of them in a row; the registry sees each lookup
/// once and one lookup's retries; once a request timed out on every try, the rest of the run
/// does not wait again.
#[tokio::test]
async fn a_registry_that_stalls_ends_every_lookup_within_one_request_s_worst_case() {
    let rig = Rig::start(Mode::Plain);
    let before = rig.inject(
        "HEAD",
        "/v2/acme/app/manifests/.*",
        Fault::Stall,
        usize::MAX,
    );
    let c = rig.client();
    let start = Instant::now();
    let tags = ["a", "b", "c", "d", "e", "f"];
    let results =
        futures_util::future::join_all(tags.iter().map(|t| c.head_manifest("acme/app", t))).await;
    let took = start.elapsed();
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(
            matches!(
                e,
                RegistryError::Timeout { .. } | RegistryError::Stalled { .. }
            ),
            "{e}"
        );
    }
    // One request's worst case — (retries + 1) × timeout + retries × the longest backoff —
    // with 2 s of room for a loaded machine: still short of two worst cases in a row.
    let worst = TIMEOUT * (RETRIES + 1) + Duration::from_millis(20) * RETRIES;
    let bound = worst + Duration::from_secs(2);
    assert!(bound < worst * 2);
    assert!(took < bound, "took {took:?}, bound {bound:?}");
    let sent = rig
        .attempts("HEAD", "/v2/acme/app/manifests/.*", before)
        .len();
    assert_eq!(sent, tags.len() + RETRIES as usize, "lookups sent");
    // Later requests to the stalled registry are not sent at all.
    let e = c.head_manifest("acme/app", "g").await.unwrap_err();
    assert!(matches!(e, RegistryError::Stalled { .. }), "{e}");
    assert!(e.to_string().contains("stopped answering"), "{e}");
}

/// `--timeout` is a deadline of silence: a blob that arrives slowly but steadily (eight pieces,
/// 300 ms apart: 2.4 s in all) downloads with a 600 ms timeout; a whole-request timeout would
/// cut it off.
#[tokio::test]
async fn a_slow_but_steady_blob_download_outlasts_the_timeout() {
    let rig = Rig::start(Mode::Plain);
    let image = Image::sized(1 << 20);
    let d = rig.registry.seed(&image, "acme/slow", "1");
    let c = rig.client();
    let manifest = c.get_manifest("acme/slow", &d).await.unwrap().unwrap();
    let parts = tagguard_registry::parse_manifest(&manifest.bytes).unwrap();
    let layer = parts.blobs.iter().max_by_key(|b| b.size).unwrap().clone();
    let path = format!("/v2/acme/slow/blobs/{}", layer.digest);
    let pause = Duration::from_millis(300);
    let before = rig.inject(
        "GET",
        &path,
        Fault::Trickle { pieces: 8, pause },
        usize::MAX,
    );
    let start = Instant::now();
    let bytes = download(&rig.client(), "acme/slow", &layer.digest)
        .await
        .unwrap();
    assert!(start.elapsed() >= pause * 8, "{:?}", start.elapsed());
    assert!(start.elapsed() > TIMEOUT * 3);
    assert_eq!(Digest::sha256_of(&bytes), layer.digest);
    assert_eq!(
        rig.attempts("GET", &path, before).len(),
        1,
        "not resumed: never silent"
    );
}
