//! Records of what tagguard wrote: after a push, one small OCI artifact per written image whose
//! `subject` is that image and whose annotations name the tags, the time, the commit and the CI
//! run. Registries with the OCI 1.1 referrers API list it under the image; for those without
//! (CNCF distribution 2.8, …) the fallback tag scheme of the distribution spec keeps an index of
//! an image's referrers under the tag `sha256-<hex of the image digest>`.
//!
//! `audit` reads them back: an immutable tag whose records name another digest moved.

mod read;
mod write;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::ci::CiKind;
use crate::context::Context;
use tagguard_registry::Digest;

pub use read::{of_image, read_records};
pub use write::{
    Prepared, RecordFailure, RecordReport, RecordWritten, Target, finish, prepare, targets,
    write_records, write_records_for,
};

/// The `artifactType` of a record.
pub const ARTIFACT_TYPE: &str = "application/vnd.tagguard.record.v1+json";
/// The OCI empty descriptor's media type and content (`{}`): the record's config and layer.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONTENT: &[u8] = b"{}";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Annotation keys of a record.
pub const TAGS: &str = "io.tagguard.record.tags";
pub const COMMIT: &str = "io.tagguard.record.commit";
pub const CI_RUN: &str = "io.tagguard.record.ci-run";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const TOOL: &str = "io.tagguard.record.tool";
/// Present (`true`) on the record of a push that adopted the image: a release (or re-run) that
/// kept an earlier build of its commit and wrote its tags onto it ("build once, promote").
pub const ADOPTED: &str = "io.tagguard.record.adopted";

/// What a push knows about itself, for its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// When the tags were written.
    pub time: DateTime<Utc>,
    /// The commit the image was built from.
    pub commit: Option<String>,
    /// The CI run that pushed (a URL where the CI gives one, else its ID).
    pub ci_run: Option<String>,
    /// Images this push adopted (earlier builds of its commit that it wrote its tags onto):
    /// their records say so ([`ADOPTED`]).
    pub adopted: Vec<Digest>,
}

impl RecordMeta {
    /// What the build's context says: its time, its commit and its CI run (GitHub Actions' and
    /// GitLab's as a link, another CI's build ID as it is).
    pub fn of_build(ctx: &Context) -> RecordMeta {
        let ci_run = match (ctx.ci, &ctx.source_url, &ctx.build_id) {
            (CiKind::GitHub, Some(url), Some(id)) => Some(format!("{url}/actions/runs/{id}")),
            (CiKind::GitLab, Some(url), Some(id)) => Some(format!("{url}/-/pipelines/{id}")),
            (_, _, id) => id.clone(),
        };
        RecordMeta {
            time: ctx.build_time,
            commit: Some(ctx.sha.clone()).filter(|s| !s.is_empty()),
            ci_run,
            adopted: Vec::new(),
        }
    }
}

/// One record read back: tagguard wrote a tag at `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub digest: Digest,
    /// RFC 3339, as written.
    pub time: String,
    pub commit: Option<String>,
    pub ci_run: Option<String>,
    /// The push adopted this image: an earlier build of its commit ([`ADOPTED`]).
    pub adopted: bool,
}

/// Tags of the OCI referrers fallback scheme (`sha256-<hex>`): tagguard's records, never the
/// policy's tags.
pub fn is_fallback_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The fallback tag holding the referrers of `digest` (distribution spec 1.1, "referrers tag
/// schema": `<alg>-<ref>`).
pub fn fallback_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest.hex())
}

/// The digest whose referrers a fallback tag holds.
pub fn subject_of_fallback_tag(tag: &str) -> Option<Digest> {
    let (alg, hex) = tag.split_once('-')?;
    format!("{alg}:{hex}").parse().ok()
}

/// The record manifest for `tags` written at `subject`: bytes exactly as put.
pub fn manifest(subject: &Subject, tags: &[String], meta: &RecordMeta) -> Vec<u8> {
    let annotations = annotations(tags, meta, meta.adopted.contains(&subject.digest));
    artifact(ARTIFACT_TYPE, subject, json!(annotations))
}

/// An OCI artifact of `artifact_type` about `subject`, with the empty config and layer and
/// `annotations`: the shape of every record tagguard leaves beside an image (push's, prune's).
/// Bytes exactly as put.
pub fn artifact(artifact_type: &str, subject: &Subject, annotations: Value) -> Vec<u8> {
    let empty = json!({
        "mediaType": EMPTY_MEDIA_TYPE,
        "digest": Digest::sha256_of(EMPTY_CONTENT).to_string(),
        "size": EMPTY_CONTENT.len(),
    });
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": empty,
        "layers": [empty],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.to_string(),
            "size": subject.size,
        },
        "annotations": annotations,
    })
    .to_string()
    .into_bytes()
}

fn annotations(
    tags: &[String],
    meta: &RecordMeta,
    adopted: bool,
) -> BTreeMap<&'static str, String> {
    let mut a = BTreeMap::from([
        (TAGS, tags.join(",")),
        (
            CREATED,
            meta.time.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        (TOOL, format!("tagguard {}", env!("CARGO_PKG_VERSION"))),
    ]);
    if let Some(c) = &meta.commit {
        a.insert(COMMIT, c.clone());
    }
    if let Some(r) = &meta.ci_run {
        a.insert(CI_RUN, r.clone());
    }
    if adopted {
        a.insert(ADOPTED, "true".to_owned());
    }
    a
}

/// The image a record is about, as a descriptor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// The tags and record of one referrer descriptor (or record manifest) with tagguard's
/// annotations; `None` for anything else.
fn parse_annotations(subject: &Digest, annotations: &Value) -> Option<(Vec<String>, Recorded)> {
    let text = |k: &str| annotations[k].as_str().map(str::to_owned);
    let tags: Vec<String> = text(TAGS)?
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    Some((
        tags,
        Recorded {
            digest: subject.clone(),
            time: text(CREATED).unwrap_or_default(),
            commit: text(COMMIT),
            ci_run: text(CI_RUN),
            adopted: text(ADOPTED).as_deref() == Some("true"),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_its_subject_tags_and_provenance() {
        let subject = Subject {
            digest: Digest::sha256_of(b"image"),
            media_type: MANIFEST_MEDIA_TYPE.into(),
            size: 5,
        };
        let meta = RecordMeta {
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            commit: Some("abc".into()),
            ci_run: Some("https://ci.example/run/1".into()),
            adopted: Vec::new(),
        };
        let bytes = manifest(&subject, &["1.0.0".into(), "latest".into()], &meta);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["artifactType"], ARTIFACT_TYPE);
        assert_eq!(v["subject"]["digest"], subject.digest.to_string());
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let (tags, rec) = parse_annotations(&subject.digest, &v["annotations"]).unwrap();
        assert_eq!(tags, ["1.0.0", "latest"]);
        assert_eq!(rec.time, "2023-11-14T22:13:20Z");
        assert_eq!(rec.commit.as_deref(), Some("abc"));
        assert_eq!(rec.ci_run.as_deref(), Some("https://ci.example/run/1"));
        assert!(!rec.adopted);
        let adopting = RecordMeta {
            adopted: vec![subject.digest.clone()],
            ..meta
        };
        let v: Value =
            serde_json::from_slice(&manifest(&subject, &["1.0.0".into()], &adopting)).unwrap();
        assert_eq!(v["annotations"][ADOPTED], "true");
        assert!(
            parse_annotations(&subject.digest, &v["annotations"])
                .unwrap()
                .1
                .adopted
        );
    }

    #[test]
    fn the_ci_run_is_a_link_where_the_ci_has_one() {
        let ctx = |ci, url: Option<&str>, id: Option<&str>| Context {
            build_id: id.map(str::to_owned),
            ci,
            source_url: url.map(str::to_owned),
            ..Context::for_commit("abc", DateTime::from_timestamp(0, 0).unwrap())
        };
        let gh = RecordMeta::of_build(&ctx(
            CiKind::GitHub,
            Some("https://github.com/a/b"),
            Some("9"),
        ));
        assert_eq!(
            gh.ci_run.as_deref(),
            Some("https://github.com/a/b/actions/runs/9")
        );
        assert_eq!(gh.commit.as_deref(), Some("abc"));
        let gl = RecordMeta::of_build(&ctx(
            CiKind::GitLab,
            Some("https://gitlab.com/a/b"),
            Some("7"),
        ));
        assert_eq!(
            gl.ci_run.as_deref(),
            Some("https://gitlab.com/a/b/-/pipelines/7")
        );
        let other = RecordMeta::of_build(&ctx(CiKind::Generic, None, Some("42")));
        assert_eq!(other.ci_run.as_deref(), Some("42"));
        assert_eq!(
            RecordMeta::of_build(&ctx(CiKind::None, None, None)).ci_run,
            None
        );
    }

    #[test]
    fn fallback_tags_round_trip() {
        let d = Digest::sha256_of(b"x");
        let tag = fallback_tag(&d);
        assert_eq!(tag, format!("sha256-{}", d.hex()));
        assert_eq!(subject_of_fallback_tag(&tag), Some(d));
        assert_eq!(subject_of_fallback_tag("latest"), None);
    }
}
