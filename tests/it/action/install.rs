//! How the action installs a release (its default): from a release mirror on loopback, the
//! archive checked against a checksum from the action's own source (`release-checksums.sha256`)
//! or the `sha256` input, never against the download's own `.sha256`; https:// only unless the
//! mirror is an explicit http:// one; every failure names what failed and the ways out.

use crate::support::act::Act;
use crate::support::release_mirror::{self, Archive, HttpsRedirect};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn act(release_url: &str) -> Act {
    Act::new("release-binary.yml").env("TEST_RELEASE_URL", release_url)
}

#[test]
fn by_default_the_release_is_downloaded_and_checked_against_the_actions_own_checksums() {
    let genuine = Archive::genuine(VERSION);
    let table = genuine.table_line();
    let sha256 = genuine.sha256.clone();
    let mirror = release_mirror::serve(VERSION, genuine);
    let act = act(&format!("http://{}", mirror.host())).checksums(&table);
    let run = act.run().success();
    assert!(!run.log.contains("Compiling"), "{}", run.log);
    assert!(
        run.log.contains(&format!(
            "downloading http://{}/v{VERSION}/tagguard-{VERSION}-",
            mirror.host()
        )),
        "{}",
        run.log
    );
    assert!(
        run.log.contains(&format!("SHA-256 {sha256}, as released")),
        "{}",
        run.log
    );
    // The archive, not its `.sha256`: that one vouches for nothing.
    let asked: Vec<String> = mirror.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].ends_with(".tar.gz"), "{asked:?}");
    assert!(
        act.output("bin").ends_with("/bin/tagguard"),
        "{}",
        act.output("bin")
    );
    assert!(
        act.output("tags")
            .starts_with("registry.example/acme/app:sha-"),
        "{}",
        act.output("tags")
    );
}

/// What an attacker who replaced the release asset serves: another archive under the same
/// name, with a `.sha256` that matches it.
#[test]
fn a_tampered_archive_with_its_own_matching_sha256_is_refused() {
    let genuine = Archive::genuine(VERSION);
    let tampered = Archive::tampered(VERSION);
    let mirror = release_mirror::serve(VERSION, tampered.clone());
    let act = act(&format!("http://{}", mirror.host())).checksums(&genuine.table_line());
    let run = act.run().failure();
    release_mirror::assert_tampered_refused(&run.log, &genuine, &tampered, &mirror.host());
    assert!(!run.log.contains("Main tagguard tags"), "{}", run.log);
}

/// An https:// release URL whose server redirects to plain HTTP: not followed, the plain-HTTP
/// mirror is never asked.
#[test]
fn a_redirect_to_plain_http_is_not_followed() {
    let genuine = Archive::genuine(VERSION);
    let table = genuine.table_line();
    let plain = release_mirror::serve(VERSION, genuine);
    let front = HttpsRedirect::start(&plain.host());
    let act = act(&front.url())
        .env("CURL_CA_BUNDLE", &front.ca().display().to_string())
        .checksums(&table);
    let run = act.run().failure();
    release_mirror::assert_redirect_refused(&run.log, &front, VERSION);
    assert_eq!(plain.requests().len(), 0);
    assert!(!run.log.contains("Main tagguard tags"), "{}", run.log);
}

/// A release the action's table does not list (newer than the action's ref) is not even
/// downloaded until the workflow names its SHA-256.
#[test]
fn a_release_nothing_vouches_for_is_not_installed_until_its_sha256_is_given() {
    let genuine = Archive::genuine(VERSION);
    let sha256 = genuine.sha256.clone();
    let mirror = release_mirror::serve(VERSION, genuine);
    let mut act = act(&format!("http://{}", mirror.host())).checksums("");
    let run = act.run().failure();
    for said in [
        format!("tagguard: nothing vouches for tagguard-{VERSION}-"),
        format!("whose release-checksums.sha256 lists {VERSION}"),
        "set version: source".to_owned(),
        format!("put tagguard {VERSION} on PATH"),
    ] {
        assert!(run.log.contains(&said), "{said}:\n{}", run.log);
    }
    assert_eq!(mirror.requests().len(), 0);

    act.set_env("TEST_SHA256", &sha256);
    let run = act.run().success();
    assert!(
        run.log.contains(&format!("SHA-256 {sha256}, as released")),
        "{}",
        run.log
    );
}

/// A download that fails (here a 404: the mirror does not have the release) says what failed
/// and the three ways out, not a bare `curl: (22)`.
#[test]
fn a_failed_download_names_release_url_version_source_and_path() {
    let elsewhere = Archive::genuine("9.9.9");
    let mirror = release_mirror::serve("9.9.9", elsewhere);
    let table = Archive::genuine(VERSION).table_line();
    let act = act(&format!("http://{}", mirror.host())).checksums(&table);
    let run = act.run().failure();
    for said in [
        format!(
            "tagguard: could not download http://{}/v{VERSION}/tagguard-{VERSION}-",
            mirror.host()
        ),
        format!("the server answered with an error (is tagguard {VERSION} released for"),
        "point release-url at a mirror that serves".to_owned(),
        "set version: source to build the action's own source with cargo".to_owned(),
        format!("put tagguard {VERSION} on PATH before this step"),
    ] {
        assert!(run.log.contains(&said), "{said}:\n{}", run.log);
    }
}

/// A release the table does not list, with `gh` and a token on the runner (GitHub's hosted
/// runners): its build provenance decides. `gh` here is a stand-in that records how it was asked
/// and answers as told, since the real one needs GitHub and Sigstore; what it is asked is the
/// promise: the archive, tagguard's repository, its release workflow, the release's tag.
#[test]
fn a_release_the_table_does_not_list_is_installed_only_if_gh_verifies_its_provenance() {
    let genuine = Archive::genuine(VERSION);
    let mirror = release_mirror::serve(VERSION, genuine);
    let bin = tempfile::tempdir().unwrap();
    let asked = bin.path().join("asked");
    let verdict = bin.path().join("verdict");
    let gh = bin.path().join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/bin/sh\necho \"token=$GH_TOKEN $*\" >> '{}'\nexit \"$(cat '{}')\"\n",
            asked.display(),
            verdict.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let act = act(&format!("http://{}", mirror.host()))
        .env("TEST_GITHUB_TOKEN", "t0ken")
        .path_first(bin.path())
        .checksums("");

    std::fs::write(&verdict, "1").unwrap();
    let run = act.run().failure();
    assert!(
        run.log.contains(&format!(
            "has no valid build provenance from tagguard/tagguard's release workflow at v{VERSION} (gh attestation verify failed): not installing it"
        )),
        "{}",
        run.log
    );
    assert!(!run.log.contains("Main tagguard tags"), "{}", run.log);

    std::fs::write(&verdict, "0").unwrap();
    let run = act.run().success();
    assert!(
        run.log
            .contains("verifying the build provenance of tagguard-"),
        "{}",
        run.log
    );
    let asked = std::fs::read_to_string(&asked).unwrap();
    // act itself asks `gh auth token` for a token of its own: only the verifications count.
    let lines: Vec<&str> = asked
        .lines()
        .filter(|l| l.contains(" attestation "))
        .collect();
    assert_eq!(lines.len(), 2, "{asked}");
    for line in lines {
        assert!(
            line.starts_with("token=t0ken attestation verify /"),
            "{line}"
        );
        assert!(
            line.ends_with(&format!(
                "/tagguard-{VERSION}-{}-unknown-linux-musl.tar.gz --repo tagguard/tagguard --signer-workflow tagguard/tagguard/.github/workflows/release.yml --source-ref refs/tags/v{VERSION} --deny-self-hosted-runners",
                std::env::consts::ARCH
            )),
            "{line}"
        );
    }
}
