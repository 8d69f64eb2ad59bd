//! The registry client's writes under injected faults: a manifest PUT is retried only when the
//! registry provably did not process it; blob uploads are retried where repeating them is
//! harmless, and a chunk PATCH never is.

use tagguard_registry::{Digest, RegistryClient, RegistryError};

use crate::rig::{Rig, assert_retried_once, retry_after_date, transient};
use crate::support::client::{RETRIES, credentials, fast_transport};
use crate::support::fault_proxy::Fault;
use crate::support::registry::Mode;

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
