//! Policy diagnostics: one fixture per kind of mistake, with the exact rendered report.

use std::path::{Path, PathBuf};

use crate::support::cmd::tagguard;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

/// Every fixture is an invalid policy: `policy check` exits 1 and says exactly this.
#[test]
fn every_invalid_fixture_has_its_report() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "fixtures went missing: {names:?}");
    for name in names {
        let run = tagguard(&fixtures())
            .args(["policy", "check", &name])
            .run()
            .code(1);
        assert!(run.stdout.is_empty(), "{name}: {}", run.stdout);
        insta::assert_snapshot!(name.trim_end_matches(".yml"), run.stderr);
    }
}

#[test]
fn a_broken_policy_stops_tags_too() {
    let run = tagguard(&fixtures())
        .args(["tags", "--policy", "many-problems.yml", "--sha", "abcdef0"])
        .run()
        .code(1);
    assert!(
        run.stderr
            .contains("5 problems in policy many-problems.yml"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_missing_policy_file_names_the_path() {
    let run = tagguard(&fixtures())
        .args(["policy", "check", "nope.yml"])
        .run()
        .code(1);
    assert!(
        run.err_text().contains("could not read policy at nope.yml"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_examples_are_valid() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut checked = 0;
    for entry in std::fs::read_dir(&policies).unwrap() {
        let path = entry.unwrap().path();
        let run = tagguard(&policies)
            .args(["policy", "check"])
            .arg_path(&path)
            .run()
            .success();
        assert!(run.stdout.contains("is valid"), "{}", run.stdout);
        checked += 1;
    }
    assert!(
        checked >= 4,
        "policies/ should hold the default and at least three examples"
    );
}

#[test]
fn the_embedded_default_is_policies_default() {
    let run = tagguard(&fixtures())
        .args(["policy", "default"])
        .run()
        .success();
    let file =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.yml"))
            .unwrap();
    assert_eq!(run.stdout, file);
}
