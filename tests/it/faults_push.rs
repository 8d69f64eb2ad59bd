//! `tagguard push` under registry faults: a write whose answer is lost is looked up and settled
//! by tagguard itself, a refused write stops every later phase, a tag that does not read back is
//! never reported as pushed, and a failure lists exactly what had already been written (and
//! really is in the registry).

use crate::support::cmd::{Run, Tagguard, push};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::git::{Repo, project};
use crate::support::registry::{Image, Mode, Registry};

const POLICY: &str = "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: latest\n    when: stable-release\n    floating: latest\n  - \"sha-{{ short_sha }}\"\n";

struct Rig {
    registry: Registry,
    proxy: FaultProxy,
    repo: Repo,
    built: String,
}

fn rig() -> Rig {
    let registry = Registry::start(Mode::Plain);
    let built = registry.seed(&Image::random(), "acme/app", "build-1");
    let proxy = FaultProxy::start(&registry.host, &[]);
    let repo = project(POLICY);
    Rig {
        registry,
        proxy,
        repo,
        built,
    }
}

impl Rig {
    fn push(&self) -> Run {
        self.push_with(&[])
    }

    fn push_with(&self, extra: &[&str]) -> Run {
        self.command().args(extra).run()
    }

    /// The push of the rig's build through the proxy, to run with more flags.
    fn command(&self) -> Tagguard {
        let image = format!("{}/acme/app", self.proxy.host());
        push(&self.repo, &image, &format!("{image}@{}", self.built)).args([
            "--timestamp=1700000000",
            "--git-tag=v1.4.2",
            "--retries=1",
            "--timeout=5",
        ])
    }

    fn sha_tag(&self) -> String {
        format!("sha-{}", &self.repo.head()[..7])
    }

    fn put(&self, tag: &str) -> String {
        format!("/v2/acme/app/manifests/{tag}")
    }
}

#[test]
fn a_rate_limited_tag_write_is_retried_and_the_push_succeeds() {
    let rig = rig();
    rig.proxy.rule(
        Rule::new(
            Some("PUT"),
            &rig.put("1.4.2"),
            Fault::status(429).with_header("Retry-After", "0"),
        )
        .first(1),
    );
    let run = rig.push().success();
    assert!(
        run.stderr.contains("pushed and verified 3 tag(s)"),
        "{}",
        run.stderr
    );
    assert_eq!(rig.proxy.count("PUT", &rig.put("1.4.2")), 2);
    assert_eq!(
        rig.registry.digest_of("acme/app", "1.4.2"),
        Some(rig.built.clone())
    );
}

#[test]
fn a_failed_tag_write_exits_1_and_lists_what_was_already_written() {
    let rig = rig();
    rig.proxy.rule(Rule::new(
        Some("PUT"),
        &rig.put("latest"),
        Fault::status(500),
    ));
    let run = rig.push().code(1);
    let err = run.err_text();
    assert!(
        err.contains(&format!(
            "registry {}: PUT /v2/acme/app/manifests/latest: unexpected status 500",
            rig.proxy.host()
        )),
        "{}",
        run.stderr
    );
    assert!(
        err.contains("already written before the failure"),
        "{}",
        run.stderr
    );
    // What it lists is in the registry; what failed is not, and is not listed.
    for tag in ["1.4.2".to_owned(), rig.sha_tag()] {
        assert!(
            run.stderr
                .contains(&format!("{}/acme/app:{tag}", rig.proxy.host())),
            "{tag} not listed: {}",
            run.stderr
        );
        assert_eq!(
            rig.registry.digest_of("acme/app", &tag),
            Some(rig.built.clone())
        );
    }
    assert!(
        !run.stderr.contains("acme/app:latest ->") && !run.stderr.contains("pushed and verified")
    );
    assert_eq!(rig.registry.digest_of("acme/app", "latest"), None);
    // A 500 leaves the write's outcome unknown: the tag is looked up, found as it was, and the
    // write sent again once (--retries=1); then the push gives up.
    assert_eq!(rig.proxy.count("PUT", &rig.put("latest")), 2);
}

#[test]
fn a_tag_write_that_keeps_failing_is_named_in_the_json_with_what_was_written() {
    let rig = rig();
    rig.proxy.rule(Rule::new(
        Some("PUT"),
        &rig.put("latest"),
        Fault::status(500),
    ));
    let run = rig.push_with(&["--format", "json"]).code(1);
    let report = run.json();
    let host = rig.proxy.host();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["verified"], false);
    let written: Vec<&str> = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["tag"].as_str().unwrap())
        .collect();
    assert_eq!(written, ["1.4.2", rig.sha_tag().as_str()]);
    assert_eq!(
        report["failed"],
        serde_json::json!([format!("{host}/acme/app:latest")])
    );
    assert_eq!(report["unsure"], serde_json::json!([]));
    let finding = &report["findings"][0];
    assert_eq!(finding["code"], "tagguard::push::failed");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("unexpected status 500"),
        "{finding}"
    );
}

#[test]
fn a_tag_write_whose_answer_is_lost_is_looked_up_and_found_landed() {
    let rig = rig();
    // The registry processes the write; its answer never comes back.
    rig.proxy
        .rule(Rule::new(Some("PUT"), &rig.put("1.4.2"), Fault::Reset).first(1));
    let run = rig.push().success();
    assert!(
        run.stderr.contains("pushed and verified 3 tag(s)"),
        "{}",
        run.stderr
    );
    // Not written twice: the lookup after the lost answer found this push's digest.
    assert_eq!(rig.proxy.count("PUT", &rig.put("1.4.2")), 1);
    assert_eq!(
        rig.registry.digest_of("acme/app", "1.4.2"),
        Some(rig.built.clone())
    );
}

#[test]
fn a_bad_gateway_on_a_tag_write_is_looked_up_and_written_again() {
    let rig = rig();
    // A 502 from a gateway: the registry never saw the write.
    rig.proxy
        .rule(Rule::new(Some("PUT"), &rig.put("latest"), Fault::status(502)).first(1));
    let run = rig.push().success();
    assert!(
        run.stderr.contains("pushed and verified 3 tag(s)"),
        "{}",
        run.stderr
    );
    assert_eq!(rig.proxy.count("PUT", &rig.put("latest")), 2);
    assert_eq!(
        rig.registry.digest_of("acme/app", "latest"),
        Some(rig.built.clone())
    );
}

#[test]
fn a_lost_answer_that_cannot_be_looked_up_is_named_as_unsure() {
    let rig = rig();
    let tag = rig.sha_tag();
    rig.proxy
        .rule(Rule::new(Some("PUT"), &rig.put(&tag), Fault::Reset).first(1));
    // The plan's lookup passes (a same-repository retag copies nothing, so it is the last one
    // before the write); the one after the lost answer (and its retry) fail.
    rig.proxy
        .rule(Rule::new(Some("HEAD"), &rig.put(&tag), Fault::status(503)).from(2));
    let run = rig.push_with(&["--format", "json"]).code(1);
    let report = run.json();
    let subject = format!("{}/acme/app:{tag}", rig.proxy.host());
    assert_eq!(report["unsure"], serde_json::json!([subject]));
    assert!(
        run.err_text().contains("it may or may not have landed"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("pushed and verified"),
        "{}",
        run.stderr
    );
    // Floating tags wait for the immutable phase, which did not complete.
    assert_eq!(rig.proxy.count("PUT", &rig.put("latest")), 0);
    assert_eq!(rig.registry.digest_of("acme/app", "latest"), None);
}

#[test]
fn a_tag_that_cannot_be_read_back_is_never_reported_as_pushed() {
    let rig = rig();
    // The plan's lookup passes (a same-repository retag copies nothing, so it is the last one
    // before the write); every later lookup (the read-back) fails.
    let tag = rig.sha_tag();
    rig.proxy
        .rule(Rule::new(Some("HEAD"), &rig.put(&tag), Fault::status(503)).from(2));
    let run = rig.push().code(1);
    assert!(
        !run.stderr.contains("pushed and verified"),
        "{}",
        run.stderr
    );
    assert!(
        run.err_text().contains(&format!(
            "registry {}: HEAD /v2/acme/app/manifests/{tag}: unexpected status 503",
            rig.proxy.host()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.err_text()
            .contains("already written before the failure"),
        "{}",
        run.stderr
    );
}

/// Registries refuse a tag write their own way; whichever tag is refused, nothing of a later
/// phase is written, so `latest` keeps what it held, and the push exits 3 listing what it wrote.
mod registry_refusals {
    use super::*;

    const PHASED: &str = "version: 1\ntags:\n  - template: \"{{ version }}\"\n    when: release\n  - template: edge\n    immutable: false\n  - template: latest\n    when: stable-release\n    floating: latest\n";

    fn phased_rig() -> (Rig, String) {
        let rig = rig();
        rig.repo.write(".tagguard.yml", PHASED);
        rig.repo.commit("phased policy");
        let old = rig.registry.seed(&Image::random(), "acme/app", "latest");
        (rig, old)
    }

    fn docker_hub() -> Fault {
        Fault::status(403).with_body(
            br#"{"errors":[{"code":"DENIED","message":"tag is immutable: 'acme/app:1.4.2'"}]}"#,
        )
    }

    fn acr() -> Fault {
        Fault::status(409).with_body(br#"{"errors":[{"code":"DENIED","message":"The operation is disallowed on this registry, repository or manifest."}]}"#)
    }

    #[test]
    fn a_docker_hub_refusal_of_an_immutable_tag_writes_no_later_phase() {
        let (rig, old) = phased_rig();
        rig.proxy
            .rule(Rule::new(Some("PUT"), &rig.put("1.4.2"), docker_hub()));
        let run = rig.push_with(&["--format", "json"]).code(3);
        assert!(
            run.err_text().contains("tag is immutable"),
            "{}",
            run.stderr
        );
        let report = run.json();
        assert_eq!(report["status"], "refused");
        assert_eq!(report["written"], serde_json::json!([]));
        assert_eq!(
            report["refused"],
            serde_json::json!([format!("{}/acme/app:1.4.2", rig.proxy.host())])
        );
        assert_eq!(
            report["findings"][0]["code"],
            "tagguard::push::registry_refused"
        );
        for later in ["edge", "latest"] {
            assert_eq!(rig.proxy.count("PUT", &rig.put(later)), 0, "{later}");
        }
        assert_eq!(rig.registry.digest_of("acme/app", "latest"), Some(old));
        assert_eq!(rig.registry.digest_of("acme/app", "edge"), None);
    }

    #[test]
    fn an_acr_refusal_of_a_mutable_tag_still_leaves_latest_alone() {
        let (rig, old) = phased_rig();
        rig.proxy
            .rule(Rule::new(Some("PUT"), &rig.put("edge"), acr()));
        let run = rig.push().code(3);
        assert!(
            run.err_text().contains("operation is disallowed"),
            "{}",
            run.stderr
        );
        // The immutable phase landed and read back before the refusal; it is listed.
        assert!(
            run.err_text().contains(&format!(
                "already written before the refusal: {}/acme/app:1.4.2 -> {}",
                rig.proxy.host(),
                rig.built
            )),
            "{}",
            run.stderr
        );
        assert_eq!(rig.proxy.count("PUT", &rig.put("latest")), 0);
        assert_eq!(rig.registry.digest_of("acme/app", "latest"), Some(old));
        assert_eq!(
            rig.registry.digest_of("acme/app", "1.4.2"),
            Some(rig.built.clone())
        );
    }
}

/// Every format carries the whole report on exit 1 and 3: what was written, refused and failed,
/// and the reason of every refusal in the step summary.
mod complete_output {
    use super::*;

    fn github(rig: &Rig, dir: &std::path::Path) -> (Run, String, String) {
        let (out, summary) = (dir.join("out"), dir.join("summary.md"));
        let run = rig
            .command()
            .args(["--format=github"])
            .env("GITHUB_OUTPUT", &out)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .run();
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        (run, read(&out), read(&summary))
    }

    #[test]
    fn github_outputs_and_the_summary_on_a_registry_refusal() {
        let rig = rig();
        rig.proxy.rule(Rule::new(
            Some("PUT"),
            &rig.put("latest"),
            Fault::status(412).with_body(br#"{"errors":[{"code":"PRECONDITION","message":"Failed to process request due to 'app:latest' configured as immutable."}]}"#),
        ));
        let dir = tempfile::tempdir().unwrap();
        let (run, outputs, summary) = github(&rig, dir.path());
        assert_eq!(run.code, 3, "{}", run.stderr);
        let host = rig.proxy.host();
        assert!(outputs.contains("status<<"), "{outputs}");
        assert!(outputs.contains("\nrefused\n"), "{outputs}");
        assert!(
            outputs.contains(&format!(
                "{host}/acme/app:1.4.2\n{host}/acme/app:{}",
                rig.sha_tag()
            )),
            "written: {outputs}"
        );
        assert!(
            run.stdout.contains(&format!(
                "::error title=tagguard refused {host}/acme/app:latest::"
            )),
            "{}",
            run.stdout
        );
        assert!(summary.contains("configured as immutable"), "{summary}");
        assert!(summary.contains("**Written** (2)"), "{summary}");
    }

    #[test]
    fn gitlab_dotenv_on_a_failed_write() {
        let rig = rig();
        rig.proxy.rule(Rule::new(
            Some("PUT"),
            &rig.put("latest"),
            Fault::status(500),
        ));
        let run = rig.push_with(&["--format", "gitlab"]).code(1);
        let host = rig.proxy.host();
        let get = |key: &str| {
            run.stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing: {}", run.stdout))
                .to_owned()
        };
        assert_eq!(get("TAGGUARD_STATUS"), "failed");
        assert_eq!(get("TAGGUARD_FAILED"), format!("{host}/acme/app:latest"));
        assert_eq!(
            get("TAGGUARD_WRITTEN"),
            format!("{host}/acme/app:1.4.2,{host}/acme/app:{}", rig.sha_tag())
        );
        assert_eq!(get("TAGGUARD_VERIFIED"), "false");
    }
}
