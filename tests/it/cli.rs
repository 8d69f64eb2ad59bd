//! The command-line interface as a reviewed contract: help texts, the schema, exit codes.

use std::path::Path;

use crate::support::cmd::tagguard;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn help_texts() {
    for args in [
        vec!["--help"],
        vec!["tags", "--help"],
        vec!["push", "--help"],
        vec!["policy", "--help"],
        vec!["policy", "check", "--help"],
    ] {
        let run = tagguard(root()).args(&args).run().success();
        insta::assert_snapshot!(
            format!("help-{}", args.join("-").trim_start_matches('-')),
            run.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let run = tagguard(root())
        .args(["tags", "--format", "yaml"])
        .run()
        .code(2);
    assert!(
        run.stderr.contains("invalid value 'yaml'"),
        "{}",
        run.stderr
    );
    tagguard(root()).args(["frobnicate"]).run().code(2);
    tagguard(root())
        .args(["tags", "--timestamp", "yesterday"])
        .run()
        .code(2);
}

/// `policy.schema.json` is what `tagguard policy schema` prints; regenerate with
/// `cargo run -q -- policy schema > policy.schema.json`.
#[test]
fn committed_schema_is_current() {
    let run = tagguard(root()).args(["policy", "schema"]).run().success();
    let committed = std::fs::read_to_string(root().join("policy.schema.json")).unwrap();
    assert_eq!(
        run.stdout, committed,
        "policy.schema.json is stale: regenerate it"
    );
    insta::assert_snapshot!("policy-schema", run.stdout);
}
