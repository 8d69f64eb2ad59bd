//! The CI output formats carry the whole report on exit 0, 1 and 3: `--format azure` (Azure
//! Pipelines output variables and issues) and `--format env` (dotenv for any CI).

use crate::support::cmd::{self, Run, tagguard};
use crate::support::git::Repo;
use crate::support::registry::{Image, Mode, Registry};

/// Azure Pipelines' variables for a tag build of v1.2.3.
const AZURE_TAG_BUILD: [(&str, &str); 5] = [
    ("TF_BUILD", "True"),
    ("BUILD_BUILDID", "1234"),
    ("BUILD_BUILDNUMBER", "20240102.3"),
    ("BUILD_SOURCEBRANCH", "refs/tags/v1.2.3"),
    ("BUILD_REASON", "IndividualCI"),
];

fn push(repo: &Repo, host: &str, format: &str) -> Run {
    let (image, source) = (format!("{host}/acme/app"), format!("{host}/acme/build:1"));
    cmd::push(repo, &image, &source)
        .args(["--timestamp=20240102030405", "--retries=0"])
        .args(["--format", format])
        .envs(AZURE_TAG_BUILD)
        .run()
}

/// The value of the Azure output variable `name`, and that it is an output, never a secret.
fn azure_output(run: &Run, name: &str) -> String {
    let prefix = format!("##vso[task.setvariable variable={name};isOutput=true]");
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} missing: {}", run.stdout))
        .to_owned()
}

fn dotenv(run: &Run, name: &str) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing: {}", run.stdout))
        .to_owned()
}

#[test]
fn azure_output_variables_on_ok_refused_and_failed() {
    let r = Registry::start(Mode::Plain);
    let repo = Repo::new();
    repo.annotated_tag("v1.2.3").detach();
    let built = r.seed(&Image::random(), "acme/build", "1");

    let ok = push(&repo, &r.host, "azure");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(azure_output(&ok, "TAGGUARD_STATUS"), "ok");
    assert_eq!(azure_output(&ok, "TAGGUARD_VERSION"), "1.2.3");
    assert!(azure_output(&ok, "TAGGUARD_WRITTEN").contains(&format!("{}/acme/app:1.2.3", r.host)));
    assert!(!ok.stdout.contains("issecret"), "{}", ok.stdout);
    assert_eq!(r.digest_of("acme/app", "1.2.3"), Some(built));

    // The release tag moved to another commit, with another build: refused (1.2.3 holds the
    // first commit's build, tagguard's record says so), and the refusal is an Azure error issue.
    // (Another build of the same commit would be kept: see tests/it/rerun.rs.)
    repo.commit("another commit");
    repo.git(&["tag", "-f", "-a", "-m", "v1.2.3", "v1.2.3"]);
    repo.detach();
    r.seed(&Image::random(), "acme/build", "1");
    let refused = push(&repo, &r.host, "azure");
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert_eq!(azure_output(&refused, "TAGGUARD_REFUSED"), "true");
    assert!(
        refused.stdout.contains(&format!(
            "##vso[task.logissue type=error]tagguard: {}/acme/app:1.2.3: ",
            r.host
        )),
        "{}",
        refused.stdout
    );

    // No registry there: failed, said as an issue and in the variables.
    let failed = push(&repo, "127.0.0.1:1", "azure");
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(azure_output(&failed, "TAGGUARD_STATUS"), "failed");
    assert!(
        failed
            .stdout
            .contains("##vso[task.logissue type=error]tagguard: "),
        "{}",
        failed.stdout
    );
}

#[test]
fn env_lines_on_ok_refused_and_failed() {
    let r = Registry::start(Mode::Plain);
    let repo = Repo::new();
    repo.annotated_tag("v1.2.3").detach();
    r.seed(&Image::random(), "acme/build", "1");
    let ok = push(&repo, &r.host, "env");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(dotenv(&ok, "TAGGUARD_STATUS"), "ok");
    assert!(dotenv(&ok, "TAGGUARD_TAGS").contains(&format!("{}/acme/app:latest", r.host)));
    // Another commit's build for the same release: refused.
    repo.commit("another commit");
    repo.git(&["tag", "-f", "-a", "-m", "v1.2.3", "v1.2.3"]);
    repo.detach();
    r.seed(&Image::random(), "acme/build", "1");
    let refused = push(&repo, &r.host, "env");
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        dotenv(&refused, "TAGGUARD_REFUSE").contains(&format!("{}/acme/app:1.2.3", r.host)),
        "{}",
        refused.stdout
    );
    let failed = push(&repo, "127.0.0.1:1", "env");
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(dotenv(&failed, "TAGGUARD_STATUS"), "failed");
}

/// `tags --format azure`: the tags as text, then the outputs, each value escaped so that it
/// stays one command (`%` is `%AZP25` to the agent).
#[test]
fn azure_tags_outputs_are_escaped() {
    let repo = Repo::new();
    let run = tagguard(repo.path())
        .args([
            "tags",
            "--image",
            "registry.example.com/acme/app",
            "--format",
            "azure",
        ])
        .envs([
            ("TF_BUILD", "True"),
            ("BUILD_BUILDID", "1"),
            ("BUILD_BUILDNUMBER", "1"),
            ("BUILD_SOURCEBRANCH", "refs/heads/main"),
            (
                "BUILD_REPOSITORY_URI",
                "https://dev.azure.com/acme/Web%20Shop/_git/app",
            ),
        ])
        .run()
        .success();
    assert_eq!(run.lines()[0], format!("sha-{}", &repo.head()[..7]));
    assert!(
        azure_output(&run, "TAGGUARD_LABELS").contains(
            "org.opencontainers.image.source=https://dev.azure.com/acme/Web%AZP2520Shop/_git/app"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .skip(2)
            .all(|l| l.starts_with("##vso[task.setvariable variable=TAGGUARD_")),
        "{}",
        run.stdout
    );
}

/// `audit --format azure` and `--format env`: the outcome as output variables and dotenv, a
/// finding and a clean registry alike.
#[test]
fn audit_in_the_ci_formats() {
    let r = Registry::start(Mode::Plain);
    let image = format!("{}/acme/app", r.host);
    let repo = Repo::new();
    let version = |v: &str| {
        Image::with_labels(serde_json::json!({
            "org.opencontainers.image.version": v,
            "org.opencontainers.image.revision": repo.head(),
        }))
    };
    r.seed(&version("1.0.0"), "acme/app", "1.0.0");
    let audit = |format: &str| {
        tagguard(repo.path())
            .args(["audit", "--image", &image, "--format", format])
            .run()
    };
    let clean = audit("azure");
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert_eq!(azure_output(&clean, "TAGGUARD_CLEAN"), "true");

    // latest holds an older release than 1.0.0: floating-behind.
    r.seed(&version("0.9.0"), "acme/app", "latest");
    let azure = audit("azure");
    assert_eq!(azure.code, 3, "{}", azure.stderr);
    assert_eq!(azure_output(&azure, "TAGGUARD_CLEAN"), "false");
    assert_eq!(
        azure_output(&azure, "TAGGUARD_TAGS"),
        format!("{image}:latest")
    );
    let env = audit("env");
    assert_eq!(env.code, 3, "{}", env.stderr);
    assert_eq!(dotenv(&env, "TAGGUARD_FINDINGS"), "1");
}
