//! The GitLab CI/CD component (templates/tagguard.yml): against GitLab's CI schema, and its job
//! resolved as GitLab does (inputs interpolated, the template included, `extends:` merged) and
//! run under bash with GitLab's predefined variables against a real registry.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::gitlab::{dotenv, get, tag_pipeline};
use crate::support::git::Repo;
use crate::support::gitlab_job::{job, run, tagguard_bin, template};
use crate::support::registry::{Image, Mode, Registry};

const COMPONENT: &str = "templates/tagguard.yml";

fn component_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(COMPONENT)).unwrap()
}

/// The component's two documents: its `spec:` header and its configuration.
fn documents() -> (String, String) {
    let text = component_text();
    let (spec, body) = text
        .split_once("\n---\n")
        .expect("spec, ---, configuration");
    (spec.to_owned(), body.to_owned())
}

/// The configuration as GitLab makes it for `inputs`: every `$[[ inputs.NAME ]]` replaced by
/// the given value or the input's default, a value outside an input's `options` refused, the
/// `include: local:` of the template resolved in this project.
fn resolve(inputs: &[(&str, &str)]) -> Value {
    let (spec, body) = documents();
    let spec: Value = serde_saphyr::from_str(&spec).unwrap();
    let declared = spec["spec"]["inputs"].as_object().expect("spec: inputs:");
    for (name, _) in inputs {
        assert!(declared.contains_key(*name), "no input {name}");
    }
    let mut body = body;
    for (name, def) in declared {
        let value = inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_else(|| def["default"].as_str().expect("a default").to_owned());
        if let Some(options) = def["options"].as_array() {
            assert!(
                options.iter().any(|o| o == value.as_str()),
                "{name}: {value}"
            );
        }
        body = body.replace(&format!("$[[ inputs.{name} ]]"), &value);
    }
    assert!(!body.contains("$[["), "an input is left: {body}");
    let config: Value = serde_saphyr::from_str(&body).unwrap();
    let mut merged = template();
    let included = config["include"][0]["local"].as_str().unwrap();
    assert_eq!(
        included.trim_start_matches('/'),
        crate::support::gitlab_job::TEMPLATE
    );
    for (k, v) in config.as_object().unwrap() {
        if k != "include" {
            merged[k] = v.clone();
        }
    }
    merged
}

#[test]
fn the_component_matches_gitlabs_schema() {
    let (spec, body) = documents();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("spec.yml"), dir.path().join("config.yml"));
    std::fs::write(&a, spec).unwrap();
    std::fs::write(&b, body).unwrap();
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.gitlab-ci"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("check-jsonschema must be installed (.ci/run pip-installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `version` input's default is this release, like action.yml's.
#[test]
fn the_version_input_defaults_to_this_release() {
    let (spec, _) = documents();
    let spec: Value = serde_saphyr::from_str(&spec).unwrap();
    assert_eq!(
        spec["spec"]["inputs"]["version"]["default"],
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn the_push_job_publishes_the_build_with_the_inputs() {
    let r = Registry::start(Mode::Basic);
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2").detach();
    let bin = tagguard_bin();
    let digest = r.seed(&Image::random(), "acme/app/build", "17");
    let source = format!("{}/acme/app/build:17", r.host);
    let config = resolve(&[("command", "push"), ("source", &source)]);
    // The image is the included template's, of the component's own release.
    assert!(config["tagguard-push"]["image"].is_null(), "{config}");
    let push = job(&config, "tagguard-push");
    let vars = tag_pipeline(&repo, "v1.4.2", &r.host);
    let out = run(&push, repo.path(), &vars, &[bin.path().to_owned()]).code(0);
    for tag in ["1.4.2", "1.4", "1", "latest"] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(digest.as_str()),
            "{tag}: {}",
            out.output
        );
    }
    assert_eq!(
        get(&dotenv(&repo, "tagguard-push.env"), "TAGGUARD_STATUS"),
        "ok"
    );
}

#[test]
fn the_tags_job_takes_images_and_policy_from_the_inputs() {
    let repo = Repo::new();
    repo.write(
        "ci/policy.yml",
        "version: 1\ntags:\n  - \"sha-{{ short_sha }}\"\n  - template: \"b{{ build_number }}\"\n    when: ci\n",
    );
    repo.commit("policy");
    repo.detach();
    let bin = tagguard_bin();
    let config = resolve(&[
        ("command", "tags"),
        ("images", "one.example/app,two.example/app"),
        ("policy", "ci/policy.yml"),
    ]);
    let mut vars = tag_pipeline(&repo, "", "registry.example.com");
    vars.retain(|(k, _)| *k != "CI_COMMIT_TAG");
    vars.push(("CI_COMMIT_BRANCH", "main".to_owned()));
    run(
        &job(&config, "tagguard-tags"),
        repo.path(),
        &vars,
        &[bin.path().to_owned()],
    )
    .code(0);
    let short = &repo.head()[..7];
    assert_eq!(
        get(&dotenv(&repo, "tagguard.env"), "TAGGUARD_TAGS"),
        format!(
            "one.example/app:sha-{short},one.example/app:b17,two.example/app:sha-{short},two.example/app:b17"
        )
    );
}
