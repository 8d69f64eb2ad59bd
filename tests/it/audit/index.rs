//! An index (multi-platform image): every platform's config must say the tag's version.

use serde_json::json;
use tagguard_registry::Digest;

use super::{POLICY, VERSION, audit};
use crate::support::git::project;
use crate::support::http::{Response, Server};

#[test]
fn every_platform_of_an_index_must_say_the_tags_version() {
    let config = |version: &str| {
        json!({"config": {"Labels": {VERSION: version}}})
            .to_string()
            .into_bytes()
    };
    let (amd, arm) = (config("1.0.0"), config("0.9.0"));
    let child = |c: &Vec<u8>| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::sha256_of(c).to_string(), "size": c.len()},
            "layers": []})
        .to_string()
        .into_bytes()
    };
    let (amd_m, arm_m) = (child(&amd), child(&arm));
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": amd_m.len(),
             "digest": Digest::sha256_of(&amd_m).to_string(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": arm_m.len(),
             "digest": Digest::sha256_of(&arm_m).to_string(),
             "platform": {"os": "linux", "architecture": "arm64"}}]})
    .to_string()
    .into_bytes();
    let blobs: Vec<(String, Vec<u8>, &str)> = [
        (&index, "application/vnd.oci.image.index.v1+json"),
        (&amd_m, "application/vnd.oci.image.manifest.v1+json"),
        (&arm_m, "application/vnd.oci.image.manifest.v1+json"),
    ]
    .into_iter()
    .map(|(b, t)| {
        (
            format!("/v2/acme/app/manifests/{}", Digest::sha256_of(b)),
            b.clone(),
            t,
        )
    })
    .chain([&amd, &arm].into_iter().map(|c| {
        (
            format!("/v2/acme/app/blobs/{}", Digest::sha256_of(c)),
            c.clone(),
            "application/json",
        )
    }))
    .collect();
    let index_digest = Digest::sha256_of(&index);
    let server = Server::start(move |req| {
        let path = req.path().to_owned();
        if path == "/v2/acme/app/tags/list" {
            return Response::new(200).json(json!({"tags": ["1.0.0"]}));
        }
        let path = if path == "/v2/acme/app/manifests/1.0.0" {
            format!("/v2/acme/app/manifests/{index_digest}")
        } else {
            path
        };
        match blobs.iter().find(|(p, _, _)| *p == path) {
            Some((_, body, media_type)) => Response::new(200)
                .header("Content-Type", *media_type)
                .header("Docker-Content-Digest", Digest::sha256_of(body).to_string())
                .body(body.clone()),
            None => Response::new(404),
        }
    });
    let repo = project(POLICY);
    let run = audit(&repo, &format!("{}/acme/app", server.host())).code(3);
    let findings = run.json()["findings"].clone();
    assert_eq!(findings.as_array().unwrap().len(), 1, "{findings}");
    assert_eq!(findings[0]["code"], "tagguard::audit::version_label");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("built as version 0.9.0"),
        "{findings}"
    );
}
