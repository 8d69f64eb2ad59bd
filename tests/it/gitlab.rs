//! The GitLab CI template's jobs, run from their YAML under bash with GitLab's predefined
//! variables, in real git repositories and against a real registry on loopback.

use std::process::Command;

use crate::support::git::{Repo, project};
use crate::support::gitlab_job::{job, run, tagguard_bin, template};
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};
use crate::support::release_mirror::{self, Archive, HttpsRedirect};

/// GitLab's predefined variables for a tag pipeline of `repo`'s HEAD at `tag`, with the build
/// time pinned (SOURCE_DATE_EPOCH = 2024-01-02T03:04:05Z).
pub(crate) fn tag_pipeline(repo: &Repo, tag: &str, registry: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CI_COMMIT_SHA", repo.head()),
        ("CI_COMMIT_SHORT_SHA", repo.head()[..8].to_owned()),
        ("CI_COMMIT_TAG", tag.to_owned()),
        ("CI_COMMIT_REF_NAME", tag.to_owned()),
        ("CI_DEFAULT_BRANCH", "main".to_owned()),
        ("CI_PIPELINE_ID", "4242".to_owned()),
        ("CI_PIPELINE_IID", "17".to_owned()),
        ("CI_JOB_ID", "90001".to_owned()),
        (
            "CI_PROJECT_URL",
            "https://gitlab.example.com/acme/app".to_owned(),
        ),
        ("CI_REGISTRY", registry.to_owned()),
        ("CI_REGISTRY_IMAGE", format!("{registry}/acme/app")),
        ("CI_REGISTRY_USER", USER.to_owned()),
        ("CI_REGISTRY_PASSWORD", PASSWORD.to_owned()),
        ("SOURCE_DATE_EPOCH", "1704164645".to_owned()),
    ]
}

pub(crate) fn dotenv(repo: &Repo, file: &str) -> Vec<(String, String)> {
    let path = repo.path().join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub(crate) fn get<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} not in {env:?}"))
}

#[test]
fn tags_job_writes_a_dotenv_report_for_later_jobs() {
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2");
    let bin = tagguard_bin();
    let vars = tag_pipeline(&repo, "v1.4.2", "registry.example.com:5050");
    let job = job(&template(), ".tagguard-tags");
    let run = run(&job, repo.path(), &vars, &[bin.path().to_owned()]).code(0);
    assert!(run.output.contains("TAGGUARD_TAGS="), "{}", run.output);

    let env = dotenv(&repo, "tagguard.env");
    let image = "registry.example.com:5050/acme/app";
    let short = &repo.head()[..7];
    assert_eq!(
        get(&env, "TAGGUARD_TAGS"),
        format!(
            "{image}:1.4.2,{image}:1.4,{image}:1,{image}:latest,{image}:sha-{short},{image}:20240102030405-4242"
        )
    );
    assert_eq!(get(&env, "TAGGUARD_VERSION"), "1.4.2");
    assert!(
        get(&env, "TAGGUARD_LABELS").contains(&format!(
            "org.opencontainers.image.revision={}",
            repo.head()
        )),
        "{env:?}"
    );
}

#[test]
fn an_empty_tagguard_images_means_the_policys_images() {
    let repo = project(
        "version: 1\nimages: [one.example/app, two.example/app]\ntags: [\"sha-{{ short_sha }}\"]\n",
    );
    let bin = tagguard_bin();
    let mut vars = tag_pipeline(&repo, "", "registry.example.com");
    vars.retain(|(k, _)| *k != "CI_COMMIT_TAG");
    vars.push(("CI_COMMIT_BRANCH", "main".to_owned()));
    vars.push(("TAGGUARD_IMAGES", String::new()));
    run(
        &job(&template(), ".tagguard-tags"),
        repo.path(),
        &vars,
        &[bin.path().to_owned()],
    )
    .code(0);
    let short = &repo.head()[..7];
    assert_eq!(
        get(&dotenv(&repo, "tagguard.env"), "TAGGUARD_TAGS"),
        format!("one.example/app:sha-{short},two.example/app:sha-{short}")
    );
}

#[test]
fn without_tagguard_on_path_or_a_version_to_install_the_job_says_so() {
    let repo = Repo::new();
    let vars = tag_pipeline(&repo, "", "registry.example.com");
    // PATH without tagguard: only the system's tools.
    let run = run(&job(&template(), ".tagguard-tags"), repo.path(), &vars, &[]).code(1);
    assert!(
        run.output.contains(
            "tagguard is not on PATH: use an image that has it, or set TAGGUARD_INSTALL_VERSION"
        ),
        "{}",
        run.output
    );
}

#[test]
fn push_job_tags_the_build_and_a_refusal_writes_nothing() {
    let r = Registry::start(Mode::Basic);
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2");
    let bin = tagguard_bin();
    let built = Image::random();
    let digest = r.seed(&built, "acme/app/build", "17");
    let mut vars = tag_pipeline(&repo, "v1.4.2", &r.host);
    vars.push(("TAGGUARD_SOURCE", format!("{}/acme/app/build:17", r.host)));
    let push = job(&template(), ".tagguard-push");

    let out = run(&push, repo.path(), &vars, &[bin.path().to_owned()]).code(0);
    for tag in ["1.4.2", "1.4", "1", "latest"] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(digest.as_str()),
            "{tag}: {}",
            out.output
        );
    }
    let env = dotenv(&repo, "tagguard-push.env");
    assert_eq!(get(&env, "TAGGUARD_REFUSED"), "false");
    assert!(get(&env, "TAGGUARD_WRITTEN").contains(&format!("{}/acme/app:1.4.2", r.host)));

    // The same pipeline again: all unchanged, nothing written.
    run(&push, repo.path(), &vars, &[bin.path().to_owned()]).code(0);
    assert_eq!(
        get(&dotenv(&repo, "tagguard-push.env"), "TAGGUARD_WRITTEN"),
        ""
    );

    // A fresh build of the same commit (a retried job): the first build is kept, nothing moves.
    let other = r.seed(&Image::random(), "acme/app/build", "18");
    vars.retain(|(k, _)| *k != "TAGGUARD_SOURCE");
    vars.push(("TAGGUARD_SOURCE", format!("{}/acme/app/build:18", r.host)));
    let out = run(&push, repo.path(), &vars, &[bin.path().to_owned()]).code(0);
    assert!(out.output.contains("TAGGUARD_WRITTEN=\n"), "{}", out.output);

    // The release tag moved to another commit: 1.4.2 holds the first commit's build (its
    // record says so), so the job fails with exit 3, and every tag still holds that build.
    // (The jobs' dotenv files stay untracked: the work tree is clean.)
    repo.git(&["commit", "-q", "--allow-empty", "-m", "another commit"]);
    repo.git(&["tag", "-f", "-a", "v1.4.2", "-m", "moved"]);
    let mut vars = tag_pipeline(&repo, "v1.4.2", &r.host);
    vars.push(("TAGGUARD_SOURCE", format!("{}/acme/app/build:18", r.host)));
    let out = run(&push, repo.path(), &vars, &[bin.path().to_owned()]).code(3);
    assert!(
        out.output.contains("TAGGUARD_REFUSED=true"),
        "{}",
        out.output
    );
    for tag in ["1.4.2", "1.4", "1", "latest"] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(digest.as_str()),
            "{tag}"
        );
    }
    assert_ne!(other, digest);
}

/// kaniko or buildah write an OCI layout; the push job takes it as `oci:DIR`.
#[test]
fn push_job_from_an_oci_layout() {
    let r = Registry::start(Mode::Basic);
    let repo = Repo::new();
    repo.annotated_tag("v0.3.0");
    let bin = tagguard_bin();
    let layout = Image::random();
    let mut vars = tag_pipeline(&repo, "v0.3.0", &r.host);
    vars.push((
        "TAGGUARD_SOURCE",
        format!("oci:{}", layout.dir.path().display()),
    ));
    let out = run(
        &job(&template(), ".tagguard-push"),
        repo.path(),
        &vars,
        &[bin.path().to_owned()],
    )
    .code(0);
    for tag in ["0.3.0", "0.3", "latest"] {
        assert_eq!(
            r.digest_of("acme/app", tag).as_deref(),
            Some(layout.digest.as_str()),
            "{tag}: {}",
            out.output
        );
    }
}

#[test]
fn check_job_reports_decisions_with_gitlab_registry_credentials() {
    let r = Registry::start(Mode::Basic);
    let repo = Repo::new();
    repo.annotated_tag("v2.0.0");
    let bin = tagguard_bin();
    r.seed(&Image::random(), "acme/app", "2.0.0");
    let vars = tag_pipeline(&repo, "v2.0.0", &r.host);
    // No source: an immutable tag that exists at all is refused.
    let out = run(
        &job(&template(), ".tagguard-check"),
        repo.path(),
        &vars,
        &[bin.path().to_owned()],
    )
    .code(3);
    let env = dotenv(&repo, "tagguard-check.env");
    assert_eq!(
        get(&env, "TAGGUARD_REFUSE"),
        format!("{}/acme/app:2.0.0", r.host)
    );
    assert!(
        out.output.contains("TAGGUARD_REFUSED=true"),
        "{}",
        out.output
    );
}

/// The template, and an example pipeline that includes it, against GitLab's CI schema.
/// The prune job of a scheduled pipeline: the policy's `retain` decides, `--apply` deletes, the
/// dotenv report names what went; TAGGUARD_PRUNE_APPLY=false only plans.
#[test]
fn prune_job_retires_the_tags_past_their_retention() {
    let r = Registry::start_deleting(Mode::Basic);
    for (n, day) in [(1, 1), (2, 5), (3, 20)] {
        let created = format!("2026-01-{day:02}T00:00:00Z");
        r.seed(&Image::created(&created), "acme/app", &format!("build-{n}"));
    }
    let repo = Repo::new();
    repo.write(
        ".tagguard.yml",
        "version: 1\ntags:\n  - template: \"build-{{ build_number }}\"\n    when: ci\n    immutable: false\n    retain: { newest: 1 }\n",
    );
    repo.commit("policy");
    let bin = tagguard_bin();
    let mut vars = tag_pipeline(&repo, "", &r.host);
    vars.retain(|(k, _)| *k != "CI_COMMIT_TAG");
    vars.push(("CI_COMMIT_BRANCH", "main".to_owned()));
    vars.push(("CI_PIPELINE_SOURCE", "schedule".to_owned()));
    let builds = || {
        let mut tags: Vec<String> = r
            .tags_of("acme/app")
            .into_iter()
            .filter(|t| t.starts_with("build-"))
            .collect();
        tags.sort();
        tags
    };
    let prune = job(&template(), ".tagguard-prune");
    let planned = format!("{0}/acme/app:build-1,{0}/acme/app:build-2", r.host);
    let sorted = |list: &str| {
        let mut v: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
        v.sort();
        v.join(",")
    };

    let mut plan_only = vars.clone();
    plan_only.push(("TAGGUARD_PRUNE_APPLY", "false".to_owned()));
    run(&prune, repo.path(), &plan_only, &[bin.path().to_owned()]).code(0);
    let env = dotenv(&repo, "tagguard-prune.env");
    assert_eq!(sorted(get(&env, "TAGGUARD_PRUNE_DELETE")), planned);
    assert_eq!(get(&env, "TAGGUARD_PRUNE_DELETED"), "");
    assert_eq!(
        builds(),
        ["build-1", "build-2", "build-3"],
        "the plan deleted"
    );

    let out = run(&prune, repo.path(), &vars, &[bin.path().to_owned()]).code(0);
    let env = dotenv(&repo, "tagguard-prune.env");
    assert_eq!(
        sorted(get(&env, "TAGGUARD_PRUNE_DELETED")),
        planned,
        "{}",
        out.output
    );
    assert_eq!(get(&env, "TAGGUARD_STATUS"), "ok");
    assert_eq!(builds(), ["build-3"]);
}

#[test]
fn template_and_example_match_gitlabs_schema() {
    let out = Command::new("check-jsonschema")
        .args([
            "--builtin-schema",
            "vendor.gitlab-ci",
            "templates/gitlab/tagguard.gitlab-ci.yml",
            "templates/gitlab/example.gitlab-ci.yml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("check-jsonschema must be installed (.ci/run pip-installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("templates/gitlab/example.gitlab-ci.yml"),
    )
    .unwrap();
    assert!(example.contains("local: templates/gitlab/tagguard.gitlab-ci.yml"));
}

/// The variables of a branch pipeline whose job image has no tagguard: the template installs
/// this crate's version from `release_url`.
fn install_pipeline(repo: &Repo, release_url: &str) -> Vec<(&'static str, String)> {
    let mut vars = tag_pipeline(repo, "", "registry.example.com");
    vars.retain(|(k, _)| *k != "CI_COMMIT_TAG");
    vars.push(("CI_COMMIT_BRANCH", "main".to_owned()));
    vars.push((
        "TAGGUARD_INSTALL_VERSION",
        env!("CARGO_PKG_VERSION").to_owned(),
    ));
    vars.push(("TAGGUARD_RELEASE_URL", release_url.to_owned()));
    vars
}

fn installed(repo: &Repo) -> bool {
    repo.path().join(".tagguard/bin/tagguard").exists()
}

#[test]
fn a_release_is_installed_only_when_a_checksum_from_the_pipeline_vouches_for_it() {
    let version = env!("CARGO_PKG_VERSION");
    let genuine = Archive::genuine(version);
    let sha256 = genuine.sha256.clone();
    let mirror = release_mirror::serve(version, genuine);
    let repo = Repo::new();
    let tags = job(&template(), ".tagguard-tags");
    let mut vars = install_pipeline(&repo, &format!("http://{}", mirror.host()));

    // Neither the template's table nor the pipeline names a checksum for this version: the
    // download is not even asked for.
    let out = run(&tags, repo.path(), &vars, &[]).code(1);
    assert!(
        out.output.contains(&format!(
            "tagguard: nothing vouches for tagguard-{version}-"
        )),
        "{}",
        out.output
    );
    assert!(out.output.contains("ways out: set TAGGUARD_RELEASE_URL"));
    assert_eq!(mirror.requests().len(), 0);
    assert!(!installed(&repo));

    vars.push(("TAGGUARD_INSTALL_SHA256", sha256.to_uppercase()));
    let out = run(&tags, repo.path(), &vars, &[]).code(0);
    assert!(
        out.output
            .contains(&format!("SHA-256 {sha256}, as released"))
    );
    assert!(out.output.contains(&format!("tagguard {version}\n")));
    assert!(installed(&repo));
    assert!(
        get(&dotenv(&repo, "tagguard.env"), "TAGGUARD_TAGS").contains(":sha-"),
        "{}",
        out.output
    );
    // The archive only: its `.sha256` vouches for nothing.
    let paths: Vec<String> = mirror.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with(".tar.gz"), "{paths:?}");
}

/// An attacker who replaced the release asset serves a matching `.sha256` too: the template's
/// own table is what the archive must match.
#[test]
fn a_tampered_archive_with_its_own_matching_sha256_is_refused() {
    let version = env!("CARGO_PKG_VERSION");
    let genuine = Archive::genuine(version);
    let tampered = Archive::tampered(version);
    let mirror = release_mirror::serve(version, tampered.clone());
    let repo = Repo::new();
    let mut vars = install_pipeline(&repo, &format!("http://{}", mirror.host()));
    vars.push(("TAGGUARD_CHECKSUMS", genuine.table_line()));
    let out = run(&job(&template(), ".tagguard-tags"), repo.path(), &vars, &[]).code(1);
    release_mirror::assert_tampered_refused(&out.output, &genuine, &tampered, &mirror.host());
    assert!(!installed(&repo));
    assert!(!repo.path().join("tagguard.env").exists());
}

/// An https:// release URL that redirects to plain HTTP: the redirect is not followed, so the
/// plain-HTTP mirror is never asked.
#[test]
fn a_redirect_to_plain_http_is_not_followed() {
    let version = env!("CARGO_PKG_VERSION");
    let genuine = Archive::genuine(version);
    let sha256 = genuine.sha256.clone();
    let plain = release_mirror::serve(version, genuine);
    let front = HttpsRedirect::start(&plain.host());
    let repo = Repo::new();
    let mut vars = install_pipeline(&repo, &front.url());
    vars.push(("TAGGUARD_INSTALL_SHA256", sha256));
    vars.push(("CURL_CA_BUNDLE", front.ca().display().to_string()));
    let out = run(&job(&template(), ".tagguard-tags"), repo.path(), &vars, &[]).code(1);
    release_mirror::assert_redirect_refused(&out.output, &front, version);
    assert_eq!(plain.requests().len(), 0);
    assert!(!installed(&repo));
}

/// The template carries the action's install script verbatim and a copy of the checksums
/// table (a remote include cannot read other files); the release's record keeps them so.
#[test]
fn the_template_holds_the_install_script_and_the_checksums_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/install-release.sh")).unwrap();
    let setup = &template()[".tagguard-setup"];
    let lines = setup["before_script"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l.as_str() == Some(script.as_str())),
        "the template's setup job has no verbatim copy of scripts/install-release.sh"
    );
    let table = std::fs::read_to_string(root.join("release-checksums.sha256")).unwrap();
    assert_eq!(setup["variables"]["TAGGUARD_CHECKSUMS"], table.as_str());
}

/// A job image without bash (alpine, busybox) runs the template's script with `sh`: the install
/// is POSIX sh, run here by dash and by busybox's sh with busybox's tools and curl only.
#[test]
fn the_install_runs_in_dash_and_in_busybox_sh() {
    let version = env!("CARGO_PKG_VERSION");
    let genuine = Archive::genuine(version);
    let tampered = Archive::tampered(version);
    let table = genuine.table_line();
    let target = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-release.sh");
    // busybox's applets and curl, nothing else.
    let tools = tempfile::tempdir().unwrap();
    let list = Command::new("busybox")
        .arg("--list")
        .output()
        .expect("busybox-static (.ci/run installs it)");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        std::os::unix::fs::symlink("/bin/busybox", tools.path().join(applet)).unwrap();
    }
    let curl = String::from_utf8_lossy(
        &Command::new("sh")
            .args(["-c", "command -v curl"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    std::os::unix::fs::symlink(&curl, tools.path().join("curl")).unwrap();

    for (shell, path) in [
        (vec!["dash"], std::env::var("PATH").unwrap()),
        (vec!["busybox", "sh"], tools.path().display().to_string()),
    ] {
        for (archive, code) in [(&genuine, 0), (&tampered, 1)] {
            let mirror = release_mirror::serve(version, archive.clone());
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new(shell[0])
                .args(&shell[1..])
                .arg("-c")
                .arg(format!(
                    ". '{}' && tagguard_install {version} {target} '{}' || exit 1",
                    script.display(),
                    dir.path().join("bin").display()
                ))
                .env_clear()
                .env("PATH", &path)
                .env("TAGGUARD_RELEASE_URL", format!("http://{}", mirror.host()))
                .env("TAGGUARD_CHECKSUMS", &table)
                .output()
                .unwrap();
            let output = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(code), "{shell:?}:\n{output}");
            assert_eq!(
                dir.path().join("bin/tagguard").exists(),
                code == 0,
                "{shell:?}:\n{output}"
            );
            if code == 1 {
                release_mirror::assert_tampered_refused(
                    &output,
                    &genuine,
                    &tampered,
                    &mirror.host(),
                );
            }
        }
    }
}

/// The pipeline's SHA-256 and the template's table must agree; a release URL is https:// or an
/// explicit http:// mirror, nothing else. Both refused before anything is downloaded.
#[test]
fn a_sha256_that_disagrees_with_the_table_or_a_url_of_another_scheme_is_refused() {
    let version = env!("CARGO_PKG_VERSION");
    let genuine = Archive::genuine(version);
    let other = Archive::tampered(version);
    let mirror = release_mirror::serve(version, genuine.clone());
    let repo = Repo::new();
    let tags = job(&template(), ".tagguard-tags");
    let mut vars = install_pipeline(&repo, &format!("http://{}", mirror.host()));
    vars.push(("TAGGUARD_CHECKSUMS", genuine.table_line()));
    vars.push(("TAGGUARD_INSTALL_SHA256", other.sha256.clone()));
    let out = run(&tags, repo.path(), &vars, &[]).code(1);
    assert!(
        out.output.contains(&format!(
            "tagguard: the SHA-256 given for {} ({}) is not the one in the release checksums table ({})",
            genuine.name, other.sha256, genuine.sha256
        )),
        "{}",
        out.output
    );

    let mut vars = install_pipeline(&repo, &format!("ftp://{}", mirror.host()));
    vars.push(("TAGGUARD_CHECKSUMS", genuine.table_line()));
    let out = run(&tags, repo.path(), &vars, &[]).code(1);
    assert!(
        out.output.contains(&format!(
            "tagguard: the release URL must start with https:// (or http:// for a mirror on a network you trust), not 'ftp://{}'",
            mirror.host()
        )),
        "{}",
        out.output
    );
    assert_eq!(mirror.requests().len(), 0);
    assert!(!installed(&repo));
}
