//! The command-line interface as a reviewed contract: help texts, the schema, exit codes.

use std::path::Path;

use crate::support::cmd::tagguard;
use crate::support::git::Repo;

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

/// CI systems set variables to nothing rather than leave them out: that means unset.
#[test]
fn empty_variables_are_unset() {
    let repo = Repo::new();
    repo.tag("v1.2.3");
    let blank = [
        "TAGGUARD_POLICY",
        "TAGGUARD_FORMAT",
        "TAGGUARD_REPO",
        "TAGGUARD_IMAGES",
        "TAGGUARD_CA_FILE",
        "TAGGUARD_ALLOW_DIRTY",
        "TAGGUARD_DRY_RUN",
        "TAGGUARD_TIMEOUT",
        "TAGGUARD_CONNECT_TIMEOUT",
        "TAGGUARD_RETRIES",
        "TAGGUARD_SOURCE",
        "TAGGUARD_INSECURE_REGISTRIES",
    ];
    let run = tagguard(repo.path())
        .args(["tags", "--timestamp=20240102030405"])
        .envs(blank.iter().map(|v| (*v, "")))
        .env("TAGGUARD_IMAGES", " ")
        .run()
        .success();
    assert_eq!(run.lines()[0], "1.2.3");
    // `push` without a source is a usage error about the flag, not about an empty value.
    let run = tagguard(repo.path())
        .args(["push"])
        .envs(blank.iter().map(|v| (*v, "")))
        .run()
        .code(2);
    assert!(run.stderr.contains("--source"), "{}", run.stderr);
}

#[test]
fn booleans_and_lists_as_ci_writes_them() {
    let repo = Repo::new();
    repo.write("dirty.txt", "a").commit("file");
    repo.write("dirty.txt", "b");
    for yes in ["1", "true", "yes", "on", "TRUE"] {
        tagguard(repo.path())
            .args(["tags"])
            .env("TAGGUARD_ALLOW_DIRTY", yes)
            .run()
            .success();
    }
    for no in ["0", "false", "no", "off"] {
        tagguard(repo.path())
            .args(["tags"])
            .env("TAGGUARD_ALLOW_DIRTY", no)
            .run()
            .code(3);
    }
    repo.commit("clean");
    for list in [
        "a.example/x/y, b.example/z/w",
        "a.example/x/y\nb.example/z/w\n",
        " a.example/x/y ,,b.example/z/w",
    ] {
        let run = tagguard(repo.path())
            .args(["tags", "--format=json"])
            .env("TAGGUARD_IMAGES", list)
            .run()
            .success();
        assert_eq!(
            run.json()["images"],
            serde_json::json!(["a.example/x/y", "b.example/z/w"]),
            "{list:?}"
        );
    }
}

/// A bad value from the environment names the variable, never a flag the user did not pass.
#[test]
fn bad_values_name_the_variable_they_came_from() {
    let repo = Repo::new();
    for (var, value, command) in [
        ("TAGGUARD_ALLOW_DIRTY", "maybe", "tags"),
        ("TAGGUARD_IMAGES", "ghcr.io/Acme/App", "tags"),
        ("TAGGUARD_FORMAT", "yaml", "tags"),
        ("TAGGUARD_TIMEOUT", "soon", "check"),
        ("TAGGUARD_CA_FILE", "/nonexistent/ca.pem", "check"),
    ] {
        let run = tagguard(repo.path())
            .args([command])
            .env(var, value)
            .run()
            .code(2);
        assert!(
            run.stderr.contains(&format!("environment variable {var}")),
            "{var}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("for '--"), "{var}: {}", run.stderr);
    }
}

/// Invalid flag values are usage errors (exit 2), found before any work.
#[test]
fn invalid_flag_values_exit_2() {
    let repo = Repo::new();
    for args in [
        &["tags", "--image", "ghcr.io/Acme/App"][..],
        &["tags", "--sha", "nothex"],
        &["tags", "--pr-number", "abc"],
        &["tags", "--branch", ""],
        &["tags", "--git-tag", ""],
        &["check", "--ca-file", "/nonexistent/ca.pem"],
        &["check", "--insecure-registry", "http://registry:5000/x"],
        &["hook", "pre-push", "--image", "Upper/Case"],
    ] {
        let run = tagguard(repo.path()).args(args).run().code(2);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
    let run = tagguard(repo.path())
        .args(["tags", "--pr-number", "12", "--sha", "ABCDEF0"])
        .run()
        .success();
    assert_eq!(run.lines(), ["sha-abcdef0"]);
}

/// A reader that went away (`tagguard … 2>&1 | head -c 10`) is no reason to panic: tagguard
/// exits as the run would have.
#[test]
fn a_closed_pipe_is_no_panic() {
    let fixtures = root().join("tests/fixtures/policy");
    let repo = Repo::new();
    for (dir, args, expected) in [
        (
            fixtures.as_path(),
            &["tags", "--policy", "many-problems.yml", "--sha", "abcdef0"][..],
            1,
        ),
        (repo.path(), &["tags"], 0),
        (repo.path(), &["--help"], 0),
        (repo.path(), &["tags", "--bogus"], 2),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_tagguard"))
            .current_dir(dir)
            .env_clear()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}

#[test]
fn completion_scripts_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = tagguard(root())
            .args(["completions", shell])
            .run()
            .success();
        for sub in [
            "tags",
            "check",
            "push",
            "policy",
            "hook",
            "completions",
            "man",
        ] {
            assert!(run.stdout.contains(sub), "{shell} script lacks {sub}");
        }
        assert!(run.stdout.contains("allow-dirty"), "{shell}");
    }
    // The bash script is valid bash.
    let run = tagguard(root())
        .args(["completions", "bash"])
        .run()
        .success();
    let script = dir.path().join("tagguard.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    tagguard(root()).args(["completions", "tcsh"]).run().code(2);
}

#[test]
fn the_man_page_is_roff() {
    let run = tagguard(root()).args(["man"]).run().success();
    let page = &run.stdout;
    assert!(page.contains(".TH tagguard 1"), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "{section}");
    }
    for sub in [
        "tagguard\\-tags",
        "tagguard\\-push",
        "tagguard\\-completions",
    ] {
        assert!(page.contains(sub), "{sub}");
    }
    // groff reads it without a warning.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tagguard.1");
    std::fs::write(&file, page).unwrap();
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&file)
        .output()
        .expect("groff is installed (man-db)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// An uppercase image name is refused with its lowercase spelling, on the command line as in a
/// policy (tests/fixtures/policy/invalid-image.yml).
#[test]
fn an_uppercase_image_name_is_refused_with_the_lowercase_one() {
    let run = tagguard(root())
        .args(["tags", "--image", "ghcr.io/Acme/App"])
        .run()
        .code(2);
    assert!(
        run.stderr.contains(
            "\"ghcr.io/Acme/App\" is not an image name: repository path component \"Acme\" must be lowercase letters and digits, separated by `.`, `_`, `__` or `-`; did you mean ghcr.io/acme/app?"
        ),
        "{}",
        run.stderr
    );
}

/// The subcommands `--help` lists under "Commands:", without `help`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    args.push("--help");
    let run = tagguard(root()).args(&args).run().success();
    run.stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// docs/commands.md's table has a row for every command `--help` lists, nested ones too.
#[test]
fn the_commands_table_has_every_command() {
    let doc = std::fs::read_to_string(root().join("docs/commands.md")).unwrap();
    let rows: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| `tagguard "))
        .collect();
    let top = subcommands(&[]);
    assert!(top.len() >= 8, "{top:?}");
    for command in top {
        let nested = subcommands(&[&command]);
        let names = match nested.is_empty() {
            true => vec![command.clone()],
            false => nested.iter().map(|n| format!("{command} {n}")).collect(),
        };
        for name in names {
            let cell = format!("`tagguard {name}");
            assert!(
                rows.iter().any(|r| r.contains(&cell)),
                "docs/commands.md has no row for `tagguard {name}`"
            );
        }
    }
}
