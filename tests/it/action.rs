//! The GitHub Action (`action.yml`) run by a real runner, act, in a temp repository with a
//! release tag: built from its own source with `cargo install`, outputs checked.

use crate::support::act::Act;

const IMAGE: &str = "registry.example/acme/app";

#[test]
fn builds_from_source_and_outputs_tags_version_labels_and_json() {
    let act = Act::new("release.yml").env("TEST_IMAGES", IMAGE);
    act.repo.annotated_tag("v1.4.2");
    let run = act.run().success();
    let head = act.repo.head();
    let short = &head[..7];

    // Built from the action's source, once: the second use in the job reuses the binary.
    assert!(run.log.contains("Compiling tagguard v"), "{}", run.log);
    assert_eq!(
        run.log.matches("Compiling tagguard v").count(),
        1,
        "{}",
        run.log
    );
    assert!(run.log.contains("is installed at"), "{}", run.log);

    assert_eq!(
        act.output("tags"),
        format!(
            "{IMAGE}:1.4.2\n{IMAGE}:1.4\n{IMAGE}:1\n{IMAGE}:latest\n{IMAGE}:sha-{short}\n{IMAGE}:20240102030405-1"
        )
    );
    assert_eq!(act.output("version"), "1.4.2");
    let labels = act.output("labels");
    assert!(
        labels
            .lines()
            .any(|l| l == format!("org.opencontainers.image.revision={head}")),
        "{labels}"
    );
    assert!(
        labels
            .lines()
            .any(|l| l == "org.opencontainers.image.version=1.4.2"),
        "{labels}"
    );
    let json: serde_json::Value = serde_json::from_str(&act.output("json")).unwrap();
    assert_eq!(json["release_tag"], "v1.4.2");
    assert_eq!(json["tags"][0]["ref"], format!("{IMAGE}:1.4.2"));
    assert_eq!(act.output("tagguard-version"), env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_tagguard_of_the_right_version_on_path_is_used_without_building() {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tagguard"), bin.path().join("tagguard"))
        .unwrap();
    let act = Act::new("release.yml")
        .env("TEST_IMAGES", IMAGE)
        .path_first(bin.path());
    let run = act.run().success();
    assert!(
        run.log.contains("is on PATH already: not installing"),
        "{}",
        run.log
    );
    assert!(!run.log.contains("Compiling"), "{}", run.log);
    // An untagged commit: no release, just the commit's tag.
    let head = act.repo.head();
    assert!(
        act.output("tags")
            .starts_with(&format!("{IMAGE}:sha-{}", &head[..7])),
        "{}",
        act.output("tags")
    );
    assert_eq!(act.output("version"), "");
}
