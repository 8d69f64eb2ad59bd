//! `tagguard prune` against the delete behaviours of other registries: the registry personas of
//! `tagguard_testkit::persona` (which registry does what, with the sources) in front of the real
//! registry, so that every manifest, read and delete by digest is real, and the state read back
//! afterwards (skopeo) is the real registry's.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::prune::{
    GONE, POLICY, REPO, assert_kept_whole, checkout, image_tags, kept_tags, prune, scene, strings,
};
use crate::support::persona::{Kind, Persona, Running, tag_many};
use crate::support::registry::{Image, Mode, Registry, pulls_back};

fn gone(image: &str) -> BTreeSet<String> {
    GONE.map(|t| format!("{image}:{t}")).into()
}

/// `image:tag` of the tags a run's JSON lists as deleted.
fn deleted_tags(j: &Value) -> BTreeSet<String> {
    j["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some(format!("{}:{}", d["image"].as_str()?, d["tag"].as_str()?)))
        .collect()
}

/// The digests a persona was asked to delete (`DELETE …/manifests/sha256:…`).
fn digest_deletes(p: &Running) -> BTreeSet<String> {
    let prefix = format!("DELETE /v2/{REPO}/manifests/");
    p.proxy
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|r| r.starts_with("sha256:"))
        .map(str::to_owned)
        .collect()
}

/// Where every tag of the repository points, read from the real registry.
fn state(r: &Registry) -> BTreeMap<String, Option<String>> {
    r.tags_of(REPO)
        .into_iter()
        .map(|t| {
            let d = r.digest_of(REPO, &t);
            (t, d)
        })
        .collect()
}

#[test]
fn registries_that_delete_a_tag_by_name_lose_that_tag_and_nothing_else() {
    // Quay and GitLab answer the OCI 1.1 tag delete the same way (see `tagguard_testkit::persona`).
    for kind in [Kind::Quay, Kind::GitLab] {
        let s = scene();
        let p = Persona::new(kind).start(&s.r);
        let (_upstream, dir) = checkout(POLICY);
        let image = format!("{}/{REPO}", p.host());

        let plan = prune(&dir, &image, &[]).code(0);
        assert_eq!(strings(&plan.json()["delete"]), gone(&image), "{kind:?}");
        assert_eq!(
            p.proxy.count("DELETE", ".*") + p.proxy.count("PUT", ".*"),
            0
        );

        let applied = prune(&dir, &image, &["--apply"]).code(0);
        let j = applied.json();
        assert_eq!(deleted_tags(&j), gone(&image), "{kind:?}: {j}");
        assert_eq!(j["not_deleted"], json!([]));
        // The two tags that share their image with a kept tag went by the tag delete, and no
        // placeholder was pushed (records go by digest and on `sha256-` tags only).
        let by_tag = format!("/v2/{REPO}/manifests/br-gone-(release|platform)");
        assert_eq!(p.proxy.count("DELETE", &by_tag), 2, "{kind:?}");
        assert_eq!(
            p.proxy.count("PUT", &format!("/v2/{REPO}/manifests/br-.*")),
            0
        );
        // The one manifest deleted by digest is the image no kept tag needs: never 1.0.0's, never
        // a platform of 1.1.0.
        assert_eq!(digest_deletes(&p), BTreeSet::from([s.alone.clone()]));
        assert_kept_whole(&s);

        let deletes = p.proxy.count("DELETE", ".*");
        let again = prune(&dir, &image, &["--apply"]).code(0);
        assert_eq!(again.json()["delete"], json!([]));
        assert_eq!(p.proxy.count("DELETE", ".*"), deletes, "{kind:?}");
        assert_kept_whole(&s);
    }
}

#[test]
fn harbor_which_deletes_by_digest_only_gets_its_tags_untagged_by_placeholder() {
    let s = scene();
    let p = Persona::new(Kind::Harbor).start(&s.r);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", p.host());
    let applied = prune(&dir, &image, &["--apply"]).code(0);
    let j = applied.json();
    assert_eq!(deleted_tags(&j), gone(&image), "{j}");
    // Harbor said UNSUPPORTED (400) to the tag delete; each shared tag was pointed at a
    // placeholder, which was deleted by digest.
    let by_tag = format!("/v2/{REPO}/manifests/br-gone-(release|platform)");
    assert!(p.proxy.count("DELETE", &by_tag) >= 1);
    assert_eq!(p.proxy.count("PUT", &by_tag), 2);
    assert_eq!(
        digest_deletes(&p).len(),
        3,
        "alone's image and two placeholders"
    );
    assert!(digest_deletes(&p).contains(&s.alone));
    assert_kept_whole(&s);
}

/// The findings of `code` in a run's JSON.
fn findings<'a>(j: &'a Value, code: &str) -> Vec<&'a Value> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

#[test]
fn a_locked_acr_repository_refuses_every_delete_and_nothing_is_worked_around() {
    let s = scene();
    let before = state(&s.r);
    let p = Persona::new(Kind::Acr).locked().start(&s.r);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", p.host());
    let run = prune(&dir, &image, &["--apply"]).code(1);
    let j = run.json();
    assert_eq!(j["status"], "failed");
    assert_eq!(j["deleted"], json!([]), "{j}");
    assert_eq!(strings(&j["not_deleted"]), gone(&image));
    let refused = findings(&j, "tagguard::prune::refused");
    // The lone image's delete by digest, and the tag delete of each shared tag.
    assert_eq!(refused.len(), 3, "{j}");
    for f in refused {
        let message = f["message"].as_str().unwrap();
        for words in [
            p.host().as_str(),
            "DELETE /v2/acme/app/manifests/",
            "ACR lock",
            "REGISTRY_DISALLOWED_OPERATION",
        ] {
            assert!(message.contains(words), "{words:?} in {message}");
        }
        let help = f["help"].as_str().unwrap();
        assert!(
            help.contains("ACR's retention policy or `acr purge`"),
            "{help}"
        );
    }
    // Nothing was worked around: no placeholder pushed over a tag the registry would not delete.
    assert_eq!(p.proxy.count("PUT", ".*"), 0);
    assert_eq!(state(&s.r), before);
    pulls_back(
        &format!("{}/{REPO}:1.0.0", s.r.host),
        tempfile::tempdir().unwrap().path(),
    );
}

#[test]
fn an_acr_lock_is_not_worked_around_by_a_placeholder_when_only_tags_are_to_go() {
    // Only tags sharing a kept image go, so no delete by digest comes first: the tag delete's 405
    // is the registry's first word, and a lock must not be read as "deletes by digest only".
    let r = Registry::start_deleting(Mode::Plain);
    let release = Image::random();
    r.seed(&release, REPO, "1.0.0");
    r.seed(&release, REPO, "br-gone-release");
    let before = state(&r);
    let p = Persona::new(Kind::Acr).locked().start(&r);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", p.host());
    let run = prune(&dir, &image, &["--apply"]).code(1);
    assert_eq!(p.proxy.count("PUT", ".*"), 0, "no placeholder over the tag");
    assert_eq!(state(&r), before);
    let j = run.json();
    assert_eq!(findings(&j, "tagguard::prune::refused").len(), 1, "{j}");
}

#[test]
fn a_harbor_immutability_rule_refuses_and_the_message_names_it_and_the_way_out() {
    let s = scene();
    let before = state(&s.r);
    let p = Persona::new(Kind::Harbor)
        .immutable("br-gone-.*")
        .start(&s.r);
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", p.host());
    let run = prune(&dir, &image, &["--apply"]).code(1);
    let j = run.json();
    assert_eq!(j["deleted"], json!([]), "{j}");
    assert_eq!(strings(&j["not_deleted"]), gone(&image));
    let refused = findings(&j, "tagguard::prune::refused");
    assert_eq!(refused.len(), 3, "{j}");
    for f in refused {
        let message = f["message"].as_str().unwrap();
        assert!(
            message.contains("Harbor tag immutability rule"),
            "{message}"
        );
        assert!(message.contains("configured as immutable"), "{message}");
        assert!(
            f["help"]
                .as_str()
                .unwrap()
                .contains("Harbor's tag retention rules")
        );
    }
    // The placeholder writes were refused too: the registry holds what it held.
    assert_eq!(state(&s.r), before);
    assert_eq!(image_tags(&s.r).len(), kept_tags().len() + GONE.len());
}

#[test]
fn tag_lists_over_pages_are_planned_and_pruned_completely() {
    for kind in [Kind::Quay, Kind::Harbor, Kind::GitLab, Kind::Acr] {
        let r = Registry::start_deleting(Mode::Plain);
        r.seed(&Image::random(), REPO, "1.0.0");
        // 200 releases (protected) and 49 tags of deleted branches, all on one image, so the pages
        // cross from one kind to the other.
        let releases = (0..200).map(|i| format!("2.{}.{}", i / 10, i % 10));
        let gone: Vec<String> = (0..49).map(|i| format!("br-gone-{i:03}")).collect();
        tag_many(
            &r,
            REPO,
            "1.0.0",
            &releases.chain(gone.clone()).collect::<Vec<_>>(),
        );
        let p = Persona::new(kind).start(&r);
        let (_upstream, dir) = checkout(POLICY);
        let image = format!("{}/{REPO}", p.host());

        let plan = prune(&dir, &image, &[]).code(0);
        let j = plan.json();
        assert_eq!(j["decisions"].as_array().unwrap().len(), 250, "{kind:?}");
        let planned: BTreeSet<String> = gone.iter().map(|t| format!("{image}:{t}")).collect();
        assert_eq!(strings(&j["delete"]), planned, "{kind:?}");
        let pages = p.proxy.count("GET", &format!("/v2/{REPO}/tags/list"));
        let at_least = if kind == Kind::Quay { 5 } else { 3 };
        assert!(pages >= at_least, "{kind:?}: {pages} pages");

        let applied = prune(&dir, &image, &["--apply"]).code(0);
        let j = applied.json();
        assert_eq!(deleted_tags(&j), planned, "{kind:?}");
        assert_eq!(j["not_deleted"], json!([]));
        assert_eq!(
            image_tags(&r).len(),
            201,
            "{kind:?}: the releases and 1.0.0 stay"
        );
        pulls_back(
            &format!("{}/{REPO}:1.0.0", r.host),
            tempfile::tempdir().unwrap().path(),
        );
    }
}
