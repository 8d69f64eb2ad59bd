//! No secret in any output of any command (tags, policy, check, push, hook pre-push): the real binary at `RUST_LOG=trace` (ours, reqwest's,
//! hyper's, rustls' records), every credential source (environment, `--password-stdin`, Docker
//! `auths`, identity token, credential helper), through success and the failure paths (wrong
//! password, 401, 500, unreachable registry), with stdout, stderr and the GitHub output files
//! searched for the secrets and their encodings.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::support::cmd::tagguard;
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::Repo;
use crate::support::registry::{
    Image, Mode, PASSWORD, REFRESH_TOKEN, Registry, USER, docker_config,
};

const WRONG: &str = "wrong-5ecr3t-never-log-me-too";

fn secrets() -> Vec<String> {
    let mut v = vec![
        PASSWORD.to_owned(),
        REFRESH_TOKEN.to_owned(),
        WRONG.to_owned(),
    ];
    for p in [PASSWORD, WRONG] {
        v.push(B64.encode(format!("{USER}:{p}")));
    }
    // Any JWT the token server issued (a base64url JSON header starts so).
    v.push("eyJ".to_owned());
    v
}

/// A `docker-credential-tgtest` on PATH that answers `secret` for any server.
fn helper_dir(dir: &Path, secret: &str) -> String {
    let bin = dir.join(format!("helper-bin-{}", secret.len()));
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("docker-credential-tgtest");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread url\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{secret}\"}}' \"$url\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

struct Credentials {
    name: &'static str,
    env: Vec<(String, String)>,
    args: Vec<String>,
    stdin: Option<String>,
}

fn sources(dir: &Path, host: &str, password: &str) -> Vec<Credentials> {
    let auth = B64.encode(format!("{USER}:{password}"));
    let cfg = |name: &str, body: serde_json::Value| -> String {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        docker_config(&d, body).display().to_string()
    };
    vec![
        Credentials {
            name: "environment",
            env: vec![
                ("TAGGUARD_USERNAME".into(), USER.into()),
                ("TAGGUARD_PASSWORD".into(), password.into()),
            ],
            args: vec![],
            stdin: None,
        },
        Credentials {
            name: "--password-stdin",
            env: vec![],
            args: vec!["--username".into(), USER.into(), "--password-stdin".into()],
            stdin: Some(format!("{password}\n")),
        },
        Credentials {
            name: "docker auths",
            env: vec![(
                "DOCKER_CONFIG".into(),
                cfg(
                    "auths",
                    serde_json::json!({"auths": {host: {"auth": auth}}}),
                ),
            )],
            args: vec![],
            stdin: None,
        },
        Credentials {
            name: "identity token",
            env: vec![(
                "DOCKER_CONFIG".into(),
                cfg(
                    "identity",
                    serde_json::json!({"auths": {host: {"identitytoken": REFRESH_TOKEN}}}),
                ),
            )],
            args: vec![],
            stdin: None,
        },
        Credentials {
            name: "credential helper",
            env: vec![
                (
                    "DOCKER_CONFIG".into(),
                    cfg(
                        "helper",
                        serde_json::json!({"credHelpers": {host: "tgtest"}}),
                    ),
                ),
                ("PATH".into(), helper_dir(dir, password)),
            ],
            args: vec![],
            stdin: None,
        },
    ]
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{what}: {s:?} appears in:\n{text}");
    }
}

/// Runs `args` with `creds`, trace logging and GitHub output files; asserts the exit code is one
/// of `codes` and that no secret is anywhere.
fn run_clean(repo: &Repo, what: &str, args: &[String], creds: &Credentials, codes: &[i32]) {
    run_clean_with(repo, what, args, creds, None, codes)
}

/// [`run_clean`] with `stdin` in place of the credentials' (a hook reads pushed refs there).
fn run_clean_with(
    repo: &Repo,
    what: &str,
    args: &[String],
    creds: &Credentials,
    stdin: Option<String>,
    codes: &[i32],
) {
    let out = tempfile::tempdir().unwrap();
    let gh_out = out.path().join("github-output");
    let summary = out.path().join("summary");
    let mut cmd = tagguard(repo.path())
        .args(args)
        .args(&creds.args)
        .env("RUST_LOG", "trace")
        .env("GITHUB_OUTPUT", &gh_out)
        .env("GITHUB_STEP_SUMMARY", &summary);
    for (k, v) in &creds.env {
        cmd = cmd.env(k, v);
    }
    if let Some(input) = stdin.or_else(|| creds.stdin.clone()) {
        cmd = cmd.stdin(input);
    }
    let run = cmd.run();
    let what = format!("{what} with {}", creds.name);
    assert!(
        codes.contains(&run.code),
        "{what}: exit {}\n{}",
        run.code,
        run.stderr
    );
    assert!(
        run.stderr.contains("TRACE") || run.code != 0 || args[0] != "check",
        "{what}: trace logging is not on"
    );
    assert_clean(&what, &run.stdout);
    assert_clean(&what, &run.stderr);
    for f in [&gh_out, &summary] {
        assert_clean(&what, &std::fs::read_to_string(f).unwrap_or_default());
    }
}

#[test]
fn no_secret_in_any_output_of_any_command_at_trace_level() {
    let r = Registry::start(Mode::Token);
    let digest = r.seed(&Image::random(), "acme/app", "build-1");
    // Everything through a proxy that can turn every request into a 500 later.
    let proxy = FaultProxy::start(
        &r.host,
        &[("/token", &r.token.as_ref().unwrap().server.host())],
    );
    let host = proxy.host();
    let repo = Repo::new();
    repo.tag("v1.0.0");
    let sha = repo.head();
    let dir = tempfile::tempdir().unwrap();
    let image = format!("--image={host}/acme/app");
    let source = format!("--source={host}/acme/app@{digest}");
    let stamp = "--timestamp=20240102030405".to_owned();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let fast = s(&["--retries=1", "--timeout=5"]);

    for creds in sources(dir.path(), &host, PASSWORD) {
        // The pre-push hook looks the release's image tags up with the same credentials.
        if creds.stdin.is_none() {
            let refs = format!(
                "refs/tags/v1.0.0 {sha} refs/tags/v1.0.0 {}\n",
                "0".repeat(40)
            );
            let asked = proxy.count("GET", "/v2/acme/app/manifests/1.0.0");
            for target in [host.as_str(), "127.0.0.1:9"] {
                let hook = s(&[
                    "hook",
                    "pre-push",
                    "origin",
                    "https://git.example/acme/app.git",
                    &format!("--image={target}/acme/app"),
                ]);
                run_clean_with(
                    &repo,
                    "hook pre-push",
                    &hook,
                    &creds,
                    Some(refs.clone()),
                    &[0, 1, 3],
                );
            }
            assert!(
                proxy.count("GET", "/v2/acme/app/manifests/1.0.0") > asked,
                "the hook did not ask the registry"
            );
        }
        // Commands that need no registry, with the secrets in their environment.
        for args in [
            s(&["tags", "--format=github"]),
            s(&["tags", "--format=json"]),
            s(&["policy", "check"]),
            s(&["policy", "default"]),
        ] {
            if creds.stdin.is_some() {
                continue; // --username is check's and push's only
            }
            run_clean(&repo, &args.join(" "), &args, &creds, &[0]);
        }
        for cmd in ["check", "push"] {
            let mut args = vec![cmd.to_owned(), stamp.clone(), image.clone(), source.clone()];
            args.extend(fast.clone());
            args.push("--format=github".into());
            run_clean(&repo, &format!("{cmd} (success)"), &args, &creds, &[0]);
            // Every request answered 500.
            proxy.rule(Rule::new(None, ".*", Fault::status(500)));
            run_clean(&repo, &format!("{cmd} (500)"), &args, &creds, &[1]);
            proxy.clear_rules();
            // The registry answering 401 to everything (a revoked credential).
            proxy.rule(Rule::new(
                None,
                "/v2/.*",
                Fault::status(401)
                    .with_header("WWW-Authenticate", r#"Basic realm="revoked""#)
                    .with_body(br#"{"errors":[{"code":"UNAUTHORIZED","message":"revoked"}]}"#),
            ));
            run_clean(&repo, &format!("{cmd} (401)"), &args, &creds, &[1]);
            proxy.clear_rules();
            // Unreachable.
            let mut gone = args.clone();
            gone[2] = "--image=127.0.0.1:9/acme/app".into();
            gone[3] = "--source=127.0.0.1:9/acme/app:x".into();
            run_clean(&repo, &format!("{cmd} (unreachable)"), &gone, &creds, &[1]);
        }
    }
    // A wrong password, from each source that carries one.
    for creds in sources(dir.path(), &host, WRONG) {
        if creds.name == "identity token" {
            continue; // a rejected token is the 401 case above
        }
        for cmd in ["check", "push"] {
            let mut args = vec![cmd.to_owned(), stamp.clone(), image.clone(), source.clone()];
            args.extend(fast.clone());
            run_clean(
                &repo,
                &format!("{cmd} (wrong password)"),
                &args,
                &creds,
                &[1],
            );
        }
    }
}
