//! The container image (`scripts/container-image.sh`) run with `docker run`: its version and
//! user, `tags` on a mounted repository and `check` against a registry on loopback, each
//! compared with the binary under test given the same arguments.
//!
//! These tests need the Docker engine and the image, named by `TAGGUARD_TEST_IMAGE` (default
//! `tagguard:test`). `.ci/run` builds it when the engine works; when it does not, `.ci/run`
//! says so in one unmistakable line and leaves these tests out, as for `docker_engine`.

use std::process::{Command, Output};

use crate::support::cmd::{Run, tagguard};
use crate::support::git::Repo;
use crate::support::gitlab_job::{job, script, template};
use crate::support::registry::{Image, Mode, Registry};

fn image() -> String {
    let image = std::env::var("TAGGUARD_TEST_IMAGE").unwrap_or_else(|_| "tagguard:test".into());
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "the image {image} is not there: build it with `scripts/container-image.sh {image}` \
         (.ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

fn run(out: Output) -> Run {
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// `docker run` of the image with `repo` mounted as the working directory, as the user who
/// owns it (so that what it writes is the host user's), on the host's network.
fn docker_run(repo: &Repo, args: &[&str]) -> Run {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "host", "--user"])
        .arg(format!("{}:{}", id("-u"), id("-g")))
        .arg("--volume")
        .arg(format!("{}:/repo", repo.path().display()))
        .args(["--workdir", "/repo", &image()])
        .args(args)
        .output()
        .expect("docker run starts");
    run(out)
}

#[test]
fn the_image_runs_this_version_as_a_non_root_user_with_labels() {
    let image = image();
    let version = run(Command::new("docker")
        .args(["run", "--rm", &image, "--version"])
        .output()
        .unwrap())
    .success();
    assert_eq!(
        version.stdout.trim(),
        format!("tagguard {}", env!("CARGO_PKG_VERSION"))
    );

    let inspect = run(Command::new("docker")
        .args(["image", "inspect", "--format", "{{json .Config}}", &image])
        .output()
        .unwrap())
    .success();
    let config: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/tagguard"])
    );
    let labels = &config["Labels"];
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap_or_default();
    assert!(
        revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        "{labels}"
    );
    assert!(
        labels["org.opencontainers.image.created"].is_string(),
        "{labels}"
    );
    assert_eq!(labels["org.opencontainers.image.title"], "tagguard");

    // GitLab runs job scripts with the image's shell (`entrypoint: [""]`).
    let shell = run(Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "sh", &image, "-c"])
        .arg("command -v tagguard && id -u")
        .output()
        .unwrap())
    .success();
    assert_eq!(shell.stdout, "/usr/local/bin/tagguard\n65532\n");
}

#[test]
fn tags_on_a_mounted_repository_are_the_binarys() {
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2");
    let args = ["tags", "--image", "registry.example/acme/app"];
    let in_image = docker_run(&repo, &args).success();
    let on_host = tagguard(repo.path()).args(args).run().success();
    assert_eq!(in_image.stdout, on_host.stdout);
    assert!(in_image.lines().contains(&"1.4.2"), "{}", in_image.stdout);
    let short = &repo.head()[..7];
    assert!(
        in_image.lines().contains(&format!("sha-{short}").as_str()),
        "{}",
        in_image.stdout
    );
}

/// `chown -R OWNER path` run as root in the image (busybox's), so that the test needs no root.
fn chown_in_image(owner: &str, path: &std::path::Path) {
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--user",
            "0:0",
            "--entrypoint",
            "/busybox/chown",
        ])
        .arg("--volume")
        .arg(format!("{}:/repo", path.display()))
        .args([&image(), "-R", owner, "/repo"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Gives `repo` back to the host's user when the test ends, whatever happened.
struct OwnedBack<'a>(&'a Repo);

impl Drop for OwnedBack<'_> {
    fn drop(&mut self) {
        let id = |flag: &str| {
            let out = Command::new("id").arg(flag).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        chown_in_image(&format!("{}:{}", id("-u"), id("-g")), self.0.path());
    }
}

/// `docker run --rm -v "$PWD:/repo" -w /repo IMAGE tags`, as GitLab's Docker executor runs a
/// job: the image's own non-root user in a checkout owned by root. tagguard reads it (it only
/// reads); a repository owned by another user than the directory it runs in stays refused.
#[test]
fn a_root_owned_checkout_is_read_by_the_images_user() {
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2");
    let args = ["tags", "--image", "registry.example/acme/app"];
    let on_host = tagguard(repo.path()).args(args).run().success();
    std::fs::create_dir(repo.path().join("planted")).unwrap();
    let _back = OwnedBack(&repo);
    chown_in_image("0:0", repo.path());
    chown_in_image("65532:65532", &repo.path().join("planted"));
    let docker = |workdir: &str| {
        let out = Command::new("docker")
            .args(["run", "--rm", "--volume"])
            .arg(format!("{}:/repo", repo.path().display()))
            .args(["--workdir", workdir, &image()])
            .args(args)
            .output()
            .unwrap();
        run(out)
    };

    let in_image = docker("/repo").success();
    assert_eq!(in_image.stdout, on_host.stdout);
    assert!(in_image.lines().contains(&"1.4.2"), "{}", in_image.stdout);

    // A directory of the image's user inside root's repository: whose `.git` is that?
    let planted = docker("/repo/planted").code(1);
    assert!(
        planted.stderr.contains("tagguard::git::unsafe_repository")
            && planted.stderr.contains("safe.directory /repo"),
        "{}",
        planted.stderr
    );
}

/// `check` from the image reaches a registry on the host's loopback: a new build for a
/// released version finds the immutable tag taken and is refused (exit 3), like the binary.
#[test]
fn check_against_a_loopback_registry_refuses_like_the_binary() {
    let r = Registry::start(Mode::Plain);
    let image = format!("{}/acme/app", r.host);
    r.seed(&Image::random(), "acme/app", "1.4.2");
    r.seed(&Image::random(), "ci/build", "b1");
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2");
    let source = format!("{}/ci/build:b1", r.host);
    let args = ["check", "--image", &image, "--source", &source];

    let in_image = docker_run(&repo, &args).code(3);
    let on_host = tagguard(repo.path()).args(args).run().code(3);
    assert_eq!(in_image.stdout, on_host.stdout);
    assert!(in_image.stdout.contains("refuse"), "{}", in_image.stdout);
    assert!(in_image.stdout.contains("1.4.2"), "{}", in_image.stdout);
}

/// GitLab's Docker executor running the template's `.tagguard-tags` job in the image, with
/// `entrypoint: [""]`: the image's shell runs the job's script as the image's non-root user, in
/// a checkout the runner cloned as root with umask 0000.
#[test]
fn the_gitlab_tags_job_runs_in_the_image_as_its_user() {
    let repo = Repo::new();
    repo.annotated_tag("v1.4.2");
    let status = Command::new("chmod")
        .arg("-R")
        .arg("a+rwX")
        .arg(repo.path())
        .status()
        .unwrap();
    assert!(status.success());
    let dir = "/builds/acme/app";
    let predefined = [
        ("CI", "true".to_owned()),
        ("GITLAB_CI", "true".to_owned()),
        ("CI_PROJECT_DIR", dir.to_owned()),
        ("CI_COMMIT_SHA", repo.head()),
        ("CI_COMMIT_TAG", "v1.4.2".to_owned()),
        ("CI_COMMIT_REF_NAME", "v1.4.2".to_owned()),
        ("CI_PIPELINE_ID", "4242".to_owned()),
        ("CI_PIPELINE_IID", "17".to_owned()),
        ("CI_REGISTRY", "registry.example.com".to_owned()),
        (
            "CI_REGISTRY_IMAGE",
            "registry.example.com/acme/app".to_owned(),
        ),
        ("SOURCE_DATE_EPOCH", "1704164645".to_owned()),
    ];
    let script = script(&job(&template(), ".tagguard-tags"), &predefined);
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--entrypoint", ""])
        .arg("--volume")
        .arg(format!("{}:{dir}", repo.path().display()))
        .args(["--workdir", dir]);
    for (k, v) in &predefined {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    let out = run(cmd
        .arg(image())
        .args(["sh", "-c", &script])
        .output()
        .unwrap());
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let env = std::fs::read_to_string(repo.path().join("tagguard.env")).unwrap();
    let image = "registry.example.com/acme/app";
    let short = &repo.head()[..7];
    assert!(
        env.lines().any(|l| l
            == format!(
                "TAGGUARD_TAGS={image}:1.4.2,{image}:1.4,{image}:1,{image}:latest,{image}:sha-{short},{image}:20240102030405-4242"
            )),
        "{env}"
    );
}
