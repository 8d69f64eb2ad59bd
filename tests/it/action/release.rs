//! The release workflow (`.github/workflows/release.yml`) and the scripts it runs: the plan
//! check, what is attested, the record of checksums and image digest, and the snippets that
//! name a release.

use crate::support::act::{Act, source_root};

/// The action installs the release of its own ref by default: `version` defaults to this
/// crate's version, which the release workflow requires the release tag to name.
#[test]
fn the_version_input_defaults_to_this_release() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"),
    )
    .unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        action["inputs"]["version"]["default"],
        env!("CARGO_PKG_VERSION")
    );
}

/// The release workflow's first job, run by act on a tag push: the tag must name Cargo.toml's
/// version and CHANGELOG.md must have that version's section (the release notes), or nothing
/// is built. The check is `.ci/release-plan.sh`; its messages are read from the script itself,
/// since act may drop the last lines of a step that fails at once.
#[test]
fn the_release_workflow_builds_only_a_tag_that_names_cargo_tomls_version() {
    let version = env!("CARGO_PKG_VERSION");
    let released = format!("# Changelog\n\n## [{version}] - 2026-12-01\n\n### Added\n- all\n");
    let unreleased = "# Changelog\n\n## [Unreleased]\n\n- all\n";
    let act = |tag: &str, changelog: &str| {
        let act = Act::repository_workflow("release.yml", &["Cargo.toml", ".ci/release-plan.sh"])
            .job("plan")
            .event(&format!(r#"{{"ref": "refs/tags/{tag}"}}"#));
        act.repo.write("CHANGELOG.md", changelog);
        act.repo.commit("the changelog");
        act.run()
    };
    act(&format!("v{version}"), &released).success();
    act("v99.0.0", &released).failure();
    act(&format!("v{version}"), unreleased).failure();

    let script = |tag: &str, changelog: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            source_root().join("Cargo.toml"),
            dir.path().join("Cargo.toml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("CHANGELOG.md"), changelog).unwrap();
        let output = dir.path().join("output");
        let run = std::process::Command::new("bash")
            .arg(source_root().join(".ci/release-plan.sh"))
            .arg(tag)
            .arg(&output)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        let written = std::fs::read_to_string(&output).unwrap_or_default();
        (run.status.code(), stdout, written)
    };
    let (code, _, written) = script(&format!("v{version}"), &released);
    assert_eq!((code, written), (Some(0), format!("version={version}\n")));
    let (code, stdout, written) = script("v99.0.0", &released);
    assert_eq!((code, written.as_str()), (Some(1), ""));
    assert!(
        stdout.contains(&format!(
            "::error::the tag v99.0.0 does not name Cargo.toml's version {version}"
        )),
        "{stdout}"
    );
    let (code, stdout, _) = script(&format!("v{version}"), unreleased);
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains(&format!("CHANGELOG.md has no section '## [{version}]'")),
        "{stdout}"
    );
}

/// Every snippet a user copies names this release: the action ref, the image tag, the GitLab
/// include ref, the pre-commit `rev` and the release downloads.
#[test]
fn every_snippet_names_this_release() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let version = env!("CARGO_PKG_VERSION");
    let patterns = [
        r"tagguard/tagguard@v([0-9][0-9A-Za-z.+-]*)",
        r"ghcr\.io/tagguard/tagguard:([0-9][0-9A-Za-z.+-]*)",
        r"tagguard/tagguard/v([0-9][0-9A-Za-z.+-]*)/templates",
        r"rev: v([0-9][0-9A-Za-z.+-]*)",
        r"\bv=([0-9][0-9A-Za-z.+-]*)",
        r"--tag v([0-9][0-9A-Za-z.+-]*)",
    ]
    .map(|p| regex::Regex::new(p).unwrap());
    let mut files = vec![
        root.join("README.md"),
        root.join("templates/gitlab/tagguard.gitlab-ci.yml"),
        root.join("templates/gitlab/example.gitlab-ci.yml"),
    ];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for pattern in &patterns {
            for found in pattern.captures_iter(&text) {
                seen += 1;
                assert_eq!(
                    found[1].trim_end_matches('.'),
                    version,
                    "{}: {}",
                    file.display(),
                    &found[0]
                );
            }
        }
    }
    assert!(seen >= 6, "only {seen} versioned snippets found");
}
