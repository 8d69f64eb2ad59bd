//! The registry client under injected faults: a fault proxy in front of a real registry (and its
//! token server) turns chosen requests into 5xx, 429 with `Retry-After`, resets, stalls,
//! truncated bodies, malformed error bodies, lying digests and redirects. For each kind of
//! request: transient faults are retried (as far as repeating the request is safe) and the
//! operation succeeds once the fault clears; persistent ones fail in bounded time with an error
//! naming the registry, the request and the cause. RELIABILITY.md has the matrix.

use std::time::{Duration, Instant, SystemTime};

use tagguard_registry::{Digest, RegistryClient, RegistryError, TransportConfig};

use crate::support::client::{RETRIES, RETRY_AFTER_CAP, TIMEOUT, credentials, fast_transport};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule, Seen};
use crate::support::http::{Response, Server};
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};

/// A real registry with `acme/app:1.0.0`, behind a fault proxy that also fronts its token server.
struct Rig {
    registry: Registry,
    proxy: FaultProxy,
    digest: String,
}

impl Rig {
    fn start(mode: Mode) -> Rig {
        let registry = Registry::start(mode);
        let digest = registry.seed(&Image::random(), "acme/app", "1.0.0");
        let token = registry.token.as_ref().map(|t| t.server.host());
        let routes: Vec<(&str, &str)> = token.iter().map(|t| ("/token", t.as_str())).collect();
        let proxy = FaultProxy::start(&registry.host, &routes);
        Rig {
            registry,
            proxy,
            digest,
        }
    }

    /// A fresh client (no cached scheme or token) through the proxy.
    fn client(&self) -> RegistryClient {
        let env: &[(&str, &str)] = if self.registry.mode == Mode::Plain {
            &[]
        } else {
            &[("TAGGUARD_USERNAME", USER), ("TAGGUARD_PASSWORD", PASSWORD)]
        };
        RegistryClient::new(&self.proxy.host(), &credentials(env), &fast_transport()).unwrap()
    }

    /// Puts `rule` in place of any earlier one; returns how many requests `method path` had.
    fn inject(&self, method: &str, path: &str, fault: Fault, first: usize) -> usize {
        self.proxy.clear_rules();
        self.proxy
            .rule(Rule::new(Some(method), path, fault).first(first));
        self.proxy.count(method, path)
    }

    /// The requests `method path` since `from` of them.
    fn attempts(&self, method: &str, path: &str, from: usize) -> Vec<Seen> {
        let re = regex::Regex::new(&format!("^(?:{path})$")).unwrap();
        self.proxy
            .requests()
            .into_iter()
            .filter(|s| s.method == method && re.is_match(s.path()))
            .skip(from)
            .collect()
    }
}

fn retry_after_date() -> String {
    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3))
}

/// Faults a retry gets past, for requests whose repetition is harmless.
fn transient(with_body: bool) -> Vec<(&'static str, Fault)> {
    let mut v = vec![
        ("500", Fault::status(500)),
        ("502", Fault::status(502)),
        ("503", Fault::status(503)),
        (
            "429 Retry-After seconds",
            Fault::status(429).with_header("Retry-After", "1"),
        ),
        (
            "429 Retry-After HTTP-date",
            Fault::status(429).with_header("Retry-After", retry_after_date()),
        ),
        (
            "503 malformed JSON error body",
            Fault::status(503)
                .with_header("Content-Type", "application/json")
                .with_body(br#"{"errors":[{"code":"UNAVAILABLE","mess"#),
        ),
        ("reset", Fault::Reset),
        ("stall", Fault::Stall),
    ];
    if with_body {
        v.push(("reset mid-body", Fault::ResetMidBody));
        v.push(("truncated body", Fault::TruncateBody));
    }
    v
}

/// Asserts that the fault cost exactly one extra attempt, and that a 429's `Retry-After` was
/// honoured up to the cap (backoff alone is under 20 ms).
fn assert_retried_once(name: &str, attempts: &[Seen]) {
    assert_eq!(attempts.len(), 2, "{name}: {attempts:#?}");
    assert!(
        attempts[0].fault.is_some() && attempts[1].fault.is_none(),
        "{name}"
    );
    let gap = attempts[1].at - attempts[0].at;
    // The gap the proxy saw: at least the cap, and (with room) short of the 2–3 s the date
    // asks for (it has whole seconds).
    if name.starts_with("429") {
        assert!(
            gap >= RETRY_AFTER_CAP && gap < Duration::from_millis(1500),
            "{name}: waited {gap:?}, expected the capped Retry-After {RETRY_AFTER_CAP:?}"
        );
    }
}

const MANIFEST: &str = "/v2/acme/app/manifests/1.0.0";

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

/// Uploads a blob into an open session: in one PUT when `chunk_size` is `None`, else in PATCH
/// chunks then a closing PUT (what push does, without the streaming).
async fn upload_blob(
    c: &RegistryClient,
    repository: &str,
    session: reqwest::Url,
    digest: &Digest,
    bytes: &[u8],
    chunk_size: Option<usize>,
) -> Result<(), RegistryError> {
    let mut location = session;
    let mut rest = bytes::Bytes::copy_from_slice(bytes);
    let mut offset = 0u64;
    if let Some(size) = chunk_size.filter(|s| *s > 0) {
        while !rest.is_empty() {
            let chunk = rest.split_to(size.min(rest.len()));
            let len = chunk.len() as u64;
            location = c.upload_chunk(repository, location, offset, chunk).await?;
            offset += len;
        }
    }
    c.finish_upload(repository, location, digest, rest).await
}

/// The manifest bytes of `acme/app:1.0.0`, for putting elsewhere.
async fn manifest_bytes(rig: &Rig) -> (String, Vec<u8>) {
    rig.proxy.clear_rules();
    let m = rig
        .client()
        .get_manifest("acme/app", "1.0.0")
        .await
        .unwrap()
        .unwrap();
    (m.media_type, m.bytes)
}

/// Where `acme/app:tag` points now, read from the registry directly (not through the proxy).
async fn read_back(rig: &Rig, tag: &str) -> Option<String> {
    let env = credentials(&[]);
    let c = RegistryClient::new(&rig.registry.host, &env, &fast_transport()).unwrap();
    c.head_manifest("acme/app", tag)
        .await
        .unwrap()
        .map(|h| h.digest.to_string())
}

#[tokio::test]
async fn manifest_put_is_retried_only_when_the_registry_provably_did_not_process_it() {
    let rig = Rig::start(Mode::Plain);
    let (media_type, bytes) = manifest_bytes(&rig).await;
    // (fault, retried?, did the write land?)
    let cases: Vec<(&str, Fault, bool, bool)> = vec![
        ("503", Fault::status(503), true, true),
        (
            "429 Retry-After seconds",
            Fault::status(429).with_header("Retry-After", "1"),
            true,
            true,
        ),
        (
            "429 Retry-After HTTP-date",
            Fault::status(429).with_header("Retry-After", retry_after_date()),
            true,
            true,
        ),
        ("500", Fault::status(500), false, false),
        ("502", Fault::status(502), false, false),
        ("stall", Fault::Stall, false, false),
        // The registry stored it; the answer was lost. Only reading back can tell.
        (
            "reset after the registry processed it",
            Fault::Reset,
            false,
            true,
        ),
        (
            "307 to another host",
            Fault::Redirect {
                target: "http://127.0.0.1:9".into(),
            },
            false,
            false,
        ),
    ];
    for (i, (name, fault, retried, landed)) in cases.into_iter().enumerate() {
        let tag = format!("put-{i}");
        let path = format!("/v2/acme/app/manifests/{tag}");
        let before = rig.inject("PUT", &path, fault, 1);
        let result = rig
            .client()
            .put_manifest("acme/app", &tag, &media_type, &bytes)
            .await;
        let attempts = rig.attempts("PUT", &path, before);
        if retried {
            assert_eq!(result.unwrap().to_string(), rig.digest, "{name}");
            assert_retried_once(name, &attempts);
        } else {
            let e = result.expect_err(name).to_string();
            assert!(
                e.starts_with(&format!("registry {}: PUT {path}", rig.proxy.host())),
                "{name}: {e}"
            );
            assert_eq!(
                attempts.len(),
                1,
                "{name}: a PUT of unknown outcome was repeated"
            );
        }
        let now = read_back(&rig, &tag).await;
        assert_eq!(now.is_some(), landed, "{name}: {now:?}");
        if let Some(d) = now {
            assert_eq!(d, rig.digest, "{name}");
        }
    }
    // A registry that claims to have stored other bytes than were sent.
    let lie = format!("sha256:{}", "c".repeat(64));
    rig.inject(
        "PUT",
        "/v2/acme/app/manifests/lied",
        Fault::WrongDigest(lie),
        usize::MAX,
    );
    let e = rig
        .client()
        .put_manifest("acme/app", "lied", &media_type, &bytes)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
}

const UPLOADS: &str = "/v2/acme/up/blobs/uploads/";
const SESSION: &str = "/v2/acme/up/blobs/uploads/[^/]+";

fn random_blob() -> (Vec<u8>, Digest) {
    let bytes: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
    let digest = Digest::sha256_of(&bytes);
    (bytes, digest)
}

#[tokio::test]
async fn blob_upload_start_and_finish_are_retried_and_the_blob_is_there() {
    let rig = Rig::start(Mode::Plain);
    for (step, method, path) in [("start", "POST", UPLOADS), ("finish", "PUT", SESSION)] {
        for (name, fault) in transient(false) {
            let name = format!("{step}: {name}");
            let (bytes, digest) = random_blob();
            let before = rig.inject(method, path, fault, 1);
            let c = rig.client();
            let session = c
                .start_upload("acme/up")
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            upload_blob(&c, "acme/up", session, &digest, &bytes, None)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let attempts = rig.attempts(method, path, before);
            // A reset after the registry completed the upload: the repeat finds no session, and
            // the blob is confirmed by reading it back instead.
            assert!(
                !attempts.is_empty() && attempts.len() <= 2,
                "{name}: {attempts:#?}"
            );
            assert!(
                c.blob_exists("acme/up", &digest).await.unwrap(),
                "{name}: blob missing"
            );
        }
    }
}

/// Every answer to the finishing PUT lost (the first one was processed): the blob is in the
/// repository, so the upload succeeded, whatever the transport said.
#[tokio::test]
async fn a_blob_upload_whose_answers_are_all_lost_is_confirmed_by_looking_the_blob_up() {
    let rig = Rig::start(Mode::Plain);
    let (bytes, digest) = random_blob();
    let before = rig.inject("PUT", SESSION, Fault::Reset, usize::MAX);
    let c = rig.client();
    let session = c.start_upload("acme/up").await.unwrap();
    upload_blob(&c, "acme/up", session, &digest, &bytes, None)
        .await
        .unwrap();
    assert_eq!(
        rig.attempts("PUT", SESSION, before).len(),
        1 + RETRIES as usize
    );
    assert!(c.blob_exists("acme/up", &digest).await.unwrap());

    // And a finishing PUT that never reached the registry is an error, not a false success.
    let (bytes, digest) = random_blob();
    rig.inject("PUT", SESSION, Fault::status(500), usize::MAX);
    let session = c.start_upload("acme/up").await.unwrap();
    let e = upload_blob(&c, "acme/up", session, &digest, &bytes, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unexpected status 500"), "{e}");
}

#[tokio::test]
async fn blob_mount_is_retried() {
    let rig = Rig::start(Mode::Plain);
    let (bytes, digest) = random_blob();
    let c = rig.client();
    let session = c.start_upload("acme/app").await.unwrap();
    upload_blob(&c, "acme/app", session, &digest, &bytes, None)
        .await
        .unwrap();
    for (i, (name, fault)) in transient(false).into_iter().enumerate() {
        let repo = format!("acme/mount{i}");
        let path = format!("/v2/{repo}/blobs/uploads/");
        let before = rig.inject("POST", &path, fault, 1);
        let c = rig.client();
        let mount = c
            .mount_blob(&repo, &digest, "acme/app")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(mount, tagguard_registry::Mount::Mounted, "{name}");
        let attempts = rig.attempts("POST", &path, before);
        assert!(attempts.len() == 2, "{name}: {attempts:#?}");
        assert!(c.blob_exists(&repo, &digest).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn a_chunk_patch_is_never_repeated() {
    let rig = Rig::start(Mode::Plain);
    for (name, fault) in [("503", Fault::status(503)), ("reset", Fault::Reset)] {
        let (bytes, digest) = random_blob();
        let before = rig.inject("PATCH", SESSION, fault, 1);
        let c = rig.client();
        let session = c.start_upload("acme/up").await.unwrap();
        let e = upload_blob(&c, "acme/up", session, &digest, &bytes, Some(1024))
            .await
            .expect_err(name);
        assert!(
            e.to_string().contains("PATCH /v2/acme/up/blobs/uploads/"),
            "{name}: {e}"
        );
        assert_eq!(rig.attempts("PATCH", SESSION, before).len(), 1, "{name}");
    }
}

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
