//! The release workflow (`.github/workflows/release.yml`) and the scripts it runs: the plan
//! check, what is attested, the record of checksums and image digest, and the snippets that
//! name a release.

use crate::support::act::{Act, source_root};
use crate::support::git::Repo;
use crate::support::gitlab_job::{job, run};
use crate::support::release_mirror::{self, Archive};

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
        let act = Act::repository_workflow("release.yml", &CHECKOUT)
            .job("plan")
            .event(&format!(r#"{{"ref": "refs/tags/{tag}"}}"#));
        act.repo.write("CHANGELOG.md", changelog);
        act.repo.commit("the changelog");
        act.run()
    };
    act(&format!("v{version}"), &released).success();
    act("v99.0.0", &released).failure();
    act(&format!("v{version}"), unreleased).failure();

    let (code, _, written) = Checkout::new(version, &released).plan(&format!("v{version}"));
    assert_eq!((code, written), (Some(0), format!("version={version}\n")));
    let (code, stdout, written) = Checkout::new(version, &released).plan("v99.0.0");
    assert_eq!((code, written.as_str()), (Some(1), ""));
    assert!(
        stdout.contains(&format!(
            "::error::the tag v99.0.0 does not name Cargo.toml's version {version}"
        )),
        "{stdout}"
    );
    let (code, stdout, _) = Checkout::new(version, unreleased).plan(&format!("v{version}"));
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains(&format!("CHANGELOG.md has no section '## [{version}]'")),
        "{stdout}"
    );
}

/// What the release workflow's plan job reads (`.ci/release-plan.sh`), and its record job
/// writes (`.ci/release-record.sh`).
const CHECKOUT: [&str; 5] = [
    "Cargo.toml",
    ".ci/release-plan.sh",
    ".ci/release-record.sh",
    "release-checksums.sha256",
    "templates/gitlab/tagguard.gitlab-ci.yml",
];

/// A copy of the files the release scripts read, with Cargo.toml's version and CHANGELOG.md
/// set, where the scripts run as the release workflow runs them.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new(version: &str, changelog: &str) -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        for file in CHECKOUT {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(source_root().join(file), &to).unwrap();
        }
        let cargo = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        let cargo = cargo.replacen(
            &format!("version = \"{}\"", env!("CARGO_PKG_VERSION")),
            &format!("version = \"{version}\""),
            1,
        );
        std::fs::write(dir.path().join("Cargo.toml"), cargo).unwrap();
        std::fs::write(dir.path().join("CHANGELOG.md"), changelog).unwrap();
        Checkout { dir }
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    fn script(&self, script: &str, args: &[&str]) -> (Option<i32>, String) {
        let run = std::process::Command::new("bash")
            .arg(self.path(script))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        (run.status.code(), out)
    }

    /// `.ci/release-plan.sh TAG OUTPUT`: the exit code, what it printed, what it wrote.
    fn plan(&self, tag: &str) -> (Option<i32>, String, String) {
        let output = self.path("output");
        let (code, out) = self.script(".ci/release-plan.sh", &[tag, output.to_str().unwrap()]);
        let written = std::fs::read_to_string(&output).unwrap_or_default();
        (code, out, written)
    }

    /// `.ci/release-record.sh VERSION DIST DIGEST` with `archives` in DIST.
    fn record(&self, version: &str, archives: &[&Archive], digest: &str) -> (Option<i32>, String) {
        let dist = self.path("dist");
        let _ = std::fs::remove_dir_all(&dist);
        std::fs::create_dir_all(&dist).unwrap();
        for archive in archives {
            std::fs::write(dist.join(&archive.name), &archive.bytes).unwrap();
        }
        self.script(
            ".ci/release-record.sh",
            &[version, dist.to_str().unwrap(), digest],
        )
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).unwrap()
    }
}

/// The record job's script after a release: the archives' checksums in the table and in the
/// GitLab template, the template's image pinned by digest; the template then installs that
/// release with nothing else vouching for it; the next release's plan needs the record.
#[test]
fn the_release_record_is_what_the_template_and_the_next_plan_trust() {
    let version = env!("CARGO_PKG_VERSION");
    let archive = Archive::genuine(version);
    // An earlier release than this one, recorded by its own release before.
    let earlier = Archive::genuine("0.0.9");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let changelog = format!("# Changelog\n\n## [{version}] - 2026-12-01\n\n- all\n");
    let release = Checkout::new(version, &changelog);
    let (code, out) = release.record("0.0.9", &[&earlier], &digest);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = release.record(version, &[&archive], &digest);
    assert_eq!(code, Some(0), "{out}");
    let table = release.read("release-checksums.sha256");
    assert!(table.ends_with(&archive.table_line()), "{table}");
    let text = release.read("templates/gitlab/tagguard.gitlab-ci.yml");
    let template: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let setup = &template[".tagguard-setup"];
    assert_eq!(
        setup["image"]["name"],
        format!("ghcr.io/tagguard/tagguard:{version}@{digest}")
    );
    assert_eq!(setup["variables"]["TAGGUARD_CHECKSUMS"], table.as_str());

    // The recorded template installs the release from a mirror on its own table.
    let mirror = release_mirror::serve(version, Archive::genuine(version));
    let repo = Repo::new();
    let vars = [
        ("CI_COMMIT_SHA", repo.head()),
        ("CI_COMMIT_BRANCH", "main".to_owned()),
        ("CI_PIPELINE_ID", "4242".to_owned()),
        (
            "TAGGUARD_IMAGES",
            "registry.example.com/acme/app".to_owned(),
        ),
        ("TAGGUARD_INSTALL_VERSION", version.to_owned()),
        ("TAGGUARD_RELEASE_URL", format!("http://{}", mirror.host())),
    ];
    let out = run(&job(&template, ".tagguard-tags"), repo.path(), &vars, &[]).code(0);
    assert!(
        out.output
            .contains(&format!("SHA-256 {}, as released", archive.sha256)),
        "{}",
        out.output
    );

    // A release is recorded once: other bytes under a recorded name are refused.
    let (code, out) = release.record(version, &[&Archive::tampered(version)], &digest);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("a release is recorded once"), "{out}");

    // The next release's plan: refused until the record of the earlier one reached its branch.
    let next = "99.0.0";
    let changelog = format!(
        "# Changelog\n\n## [{next}] - 2027-01-01\n\n- more\n\n## [{version}] - 2026-12-01\n\n## [0.0.9] - 2026-11-01\n"
    );
    let unrecorded = Checkout::new(next, &changelog);
    let (code, out, _) = unrecorded.plan(&format!("v{next}"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("release-checksums.sha256 has no checksums of the earlier release 0.0.9"),
        "{out}"
    );
    for file in [
        "release-checksums.sha256",
        "templates/gitlab/tagguard.gitlab-ci.yml",
    ] {
        std::fs::copy(release.path(file), unrecorded.path(file)).unwrap();
    }
    let (code, out, written) = unrecorded.plan(&format!("v{next}"));
    assert_eq!(
        (code, written),
        (Some(0), format!("version={next}\n")),
        "{out}"
    );

    // A template whose copy of the table drifted is refused too.
    std::fs::write(
        unrecorded.path("release-checksums.sha256"),
        format!("{table}{}", Archive::tampered(version).table_line()),
    )
    .unwrap();
    let (code, out, _) = unrecorded.plan(&format!("v{next}"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("TAGGUARD_CHECKSUMS is not a copy of"), "{out}");
}

/// Every artifact of a release carries build provenance, the archives an SBOM, and only the
/// jobs that attest (or publish by trusted publishing) can mint an OIDC token; the record job
/// verifies every archive's provenance before it records a checksum.
#[test]
fn the_release_workflow_attests_every_artifact_with_the_least_permissions() {
    let text =
        std::fs::read_to_string(source_root().join(".github/workflows/release.yml")).unwrap();
    let workflow: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(workflow["permissions"], serde_json::json!({}));
    let jobs = workflow["jobs"].as_object().unwrap();
    let steps =
        |job: &str| -> Vec<serde_json::Value> { jobs[job]["steps"].as_array().unwrap().clone() };
    let attests = |job: &str| -> Vec<serde_json::Value> {
        steps(job)
            .into_iter()
            .filter(|s| {
                s["uses"].as_str().is_some_and(|u| {
                    u.starts_with("actions/attest-build-provenance@")
                        || u.starts_with("actions/attest@")
                })
            })
            .map(|s| s["with"].clone())
            .collect()
    };
    let runs = |job: &str| -> String {
        steps(job)
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Each job that uploads a release artifact attests what it uploads.
    for (job, subject) in [
        ("binaries", "dist/tagguard-*.tar.gz"),
        ("wheels", "dist/*.whl"),
        ("sdist", "dist/*.tar.gz"),
    ] {
        let with = attests(job);
        assert!(
            with.iter().any(|w| w["subject-path"] == subject),
            "{job} attests no {subject}: {with:?}"
        );
    }
    assert!(runs("binaries").contains("cargo auditable build --release --locked"));
    let image = attests("image");
    assert_eq!(image.len(), 1, "{image:?}");
    assert_eq!(image[0]["subject-name"], "ghcr.io/tagguard/tagguard");
    assert_eq!(
        image[0]["subject-digest"],
        "${{ steps.digest.outputs.digest }}"
    );
    assert_eq!(image[0]["push-to-registry"], true);
    let sbom = attests("sbom");
    assert!(runs("sbom").contains("cargo cyclonedx --format json"));
    assert!(
        sbom.iter()
            .any(|w| w["subject-path"] == "dist/tagguard-*.tar.gz"
                && w["sbom-path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(".cdx.json"))),
        "{sbom:?}"
    );
    assert!(
        steps("github-release")
            .iter()
            .any(|s| s["with"]["name"] == "sbom"),
        "the SBOM is not among the release's assets"
    );
    let record = runs("record");
    assert!(record.contains("gh attestation verify"), "{record}");
    assert!(record.contains(".ci/release-record.sh"), "{record}");

    // id-token and attestations: write only where something is attested; id-token also for
    // PyPI's trusted publishing.
    for (name, job) in jobs {
        let perms = &job["permissions"];
        let attesting = !attests(name).is_empty();
        assert_eq!(
            perms["attestations"] == "write",
            attesting,
            "{name}: attestations {:?}",
            perms["attestations"]
        );
        assert_eq!(
            perms["id-token"] == "write",
            attesting || name == "pypi",
            "{name}: id-token {:?}",
            perms["id-token"]
        );
        if name != "record" && name != "github-release" {
            assert_ne!(perms["contents"], "write", "{name}");
        }
    }
}

/// Every snippet a user copies names this release: the action ref, the image tag, the GitLab
/// include ref and CI/CD component ref, the pre-commit `rev`, the release downloads and the pip
/// pins of the CI recipes.
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
        r"tagguard==([0-9][0-9A-Za-z.+-]*[0-9A-Za-z])",
        r"tagguard/tagguard/tagguard@([0-9][0-9A-Za-z.+-]*)",
    ]
    .map(|p| regex::Regex::new(p).unwrap());
    let mut files = vec![
        root.join("README.md"),
        root.join("templates/gitlab/tagguard.gitlab-ci.yml"),
        root.join("templates/gitlab/example.gitlab-ci.yml"),
    ];
    // docs/ and its folders (docs/ci/), every page.
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for pattern in &patterns {
            for found in pattern.captures_iter(&text) {
                seen += 1;
                // The moving major tag (`@v0`) names this release's major.
                let named = found[1].trim_end_matches('.');
                assert!(
                    named == version
                        || !named.contains('.') && version.split('.').next() == Some(named),
                    "{}: {}",
                    file.display(),
                    &found[0]
                );
            }
        }
    }
    assert!(seen >= 6, "only {seen} versioned snippets found");
}
