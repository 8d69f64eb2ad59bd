//! `tagguard prune --apply` when the registry fails a delete or a tag moves between the plan and
//! its delete: a fault proxy in front of the real registry (deletes enabled).

use std::collections::BTreeSet;

use serde_json::json;

use crate::prune::{POLICY, REPO, checkout, image_tags, prune};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::registry::{Image, Mode, Registry};

#[test]
fn a_failed_delete_exits_1_and_the_json_names_what_was_deleted_and_what_was_not() {
    let r = Registry::start_deleting(Mode::Plain);
    let alone = r.seed(&Image::random(), REPO, "br-gone-alone");
    let release = Image::random();
    r.seed(&release, REPO, "1.0.0");
    r.seed(&release, REPO, "br-gone-release");
    let proxy = FaultProxy::start(&r.host, &[]);
    proxy.rule(Rule::new(
        Some("DELETE"),
        &format!("/v2/{REPO}/manifests/{alone}"),
        Fault::status(500),
    ));
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", proxy.host());
    let run = prune(&dir, &image, &["--apply", "--retries", "0"]).code(1);
    let j = run.json();
    assert_eq!(j["status"], "failed");
    let tags: Vec<&str> = j["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["tag"].as_str())
        .collect();
    assert_eq!(tags, ["br-gone-release"], "{j}");
    assert_eq!(j["not_deleted"], json!([format!("{image}:br-gone-alone")]));
    assert_eq!(j["findings"][0]["code"], "tagguard::prune::failed");
    assert_eq!(j["findings"][0]["subject"], format!("{image}@{alone}"));
    // What failed is still there for the next run; the release was never touched.
    assert_eq!(
        r.digest_of(REPO, "br-gone-alone").as_deref(),
        Some(alone.as_str())
    );
    assert_eq!(r.digest_of(REPO, "1.0.0"), Some(release.digest.clone()));
    proxy.clear_rules();
    let again = prune(&dir, &image, &["--apply"]).code(0);
    assert_eq!(again.json()["not_deleted"], json!([]));
    assert_eq!(image_tags(&r), BTreeSet::from(["1.0.0".to_owned()]));
}

#[test]
fn a_tag_that_moved_since_the_plan_is_decided_again_and_kept() {
    let r = Registry::start_deleting(Mode::Plain);
    let alone = r.seed(&Image::random(), REPO, "br-gone-alone");
    let elsewhere = r.seed(&Image::random(), REPO, "sha-1234567");
    let proxy = FaultProxy::start(&r.host, &[]);
    // The plan reads the tag with a GET; its look right before the delete (a HEAD) finds it
    // moved: another writer pushed it again meanwhile.
    proxy.rule(Rule::new(
        Some("HEAD"),
        &format!("/v2/{REPO}/manifests/br-gone-alone"),
        Fault::WrongDigest(elsewhere.clone()),
    ));
    let (_upstream, dir) = checkout(POLICY);
    let image = format!("{}/{REPO}", proxy.host());
    let writes = r.requests_with(&["DELETE", "PUT"]).len();
    let run = prune(&dir, &image, &["--apply"]).code(0);
    let j = run.json();
    assert_eq!(j["delete"], json!([format!("{image}:br-gone-alone")]));
    assert_eq!(j["deleted"], json!([]), "{j}");
    assert_eq!(j["not_deleted"], json!([format!("{image}:br-gone-alone")]));
    assert_eq!(j["findings"][0]["code"], "tagguard::prune::moved_meanwhile");
    assert_eq!(
        r.digest_of(REPO, "br-gone-alone").as_deref(),
        Some(alone.as_str())
    );
    assert_eq!(
        r.requests_with(&["DELETE", "PUT"]).len(),
        writes,
        "nothing deleted"
    );
}
