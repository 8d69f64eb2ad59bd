//! Hostile build facts cannot inject into what CI reads back: a branch name, a git tag, a pull
//! request's head ref or the CI's repository URL carrying newlines, `::` workflow commands,
//! `name<<DELIM` heredoc starts, `=` and `,` never produce an extra or altered GitHub step output,
//! dotenv variable, label or tag, and every tag that comes out is a valid OCI tag.

use std::collections::BTreeMap;

use crate::support::cmd::tagguard;
use crate::support::git::project;

const HOSTILE: &[&str] = &[
    "main\ntags<<EOF\nevil.example/app:pwned\nEOF",
    "x\r\n::set-output name=tags::evil.example/app:pwned",
    "feature/a%0A::error::pwned",
    "a\nTAGGUARD_TAGS=evil.example/app:pwned",
    "b,evil.example/app:pwned",
    "ghadelimiter_0000\nversion<<ghadelimiter_0000\n9.9.9",
    "c=d\u{7}e\u{1b}[31m",
    "$(touch /tmp/pwned)`id`",
];

/// Parses a `$GITHUB_OUTPUT` file the way the runner does: `name=value` lines and
/// `name<<DELIM` … `DELIM` blocks.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            assert!(
                out.insert(name.to_owned(), value.join("\n")).is_none(),
                "output {name} written twice:\n{text}"
            );
        } else if let Some((name, value)) = line.split_once('=') {
            assert!(
                out.insert(name.to_owned(), value.to_owned()).is_none(),
                "output {name} written twice:\n{text}"
            );
        } else {
            panic!("stray line {line:?} in:\n{text}");
        }
    }
    out
}

fn valid_tag(t: &str) -> bool {
    tagguard_registry::tag_problem(t).is_none()
}

#[test]
fn hostile_branch_tag_and_ci_values_cannot_inject_outputs_or_tags() {
    let repo = project(
        "version: 1\nimage: registry.example/acme/app\ntags:\n  - template: \"{{ branch }}\"\n    when: { branch: \".\" }\n  - template: \"{{ git_tag }}\"\n    when: { git-tag: \".\" }\n  - \"sha-{{ short_sha }}\"\n",
    );
    for hostile in HOSTILE {
        let dir = tempfile::tempdir().unwrap();
        let gh = dir.path().join("out");
        let env = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_HEAD_REF", *hostile),
            ("GITHUB_REF", "refs/pull/7/merge"),
            ("GITHUB_SERVER_URL", "https://github.example"),
            ("GITHUB_REPOSITORY", *hostile),
        ];
        let run = tagguard(repo.path())
            .args(["tags", "--format=github", "--timestamp=20240102030405"])
            .args(["--git-tag", &format!("rel-{hostile}")])
            .envs(env)
            .env("GITHUB_OUTPUT", &gh)
            .run();
        assert_eq!(run.code, 0, "{hostile:?}: {}", run.stderr);
        // Sanitized, not refused: the build goes on with safe tags.
        let run = run.success();
        let outputs = parse_github_output(&std::fs::read_to_string(&gh).unwrap());
        let names: Vec<&str> = outputs.keys().map(String::as_str).collect();
        assert_eq!(names, ["json", "labels", "tags", "version"], "{hostile:?}");
        for r in outputs["tags"].lines() {
            let tag = r
                .strip_prefix("registry.example/acme/app:")
                .unwrap_or_else(|| panic!("{hostile:?}: foreign reference {r:?}"));
            assert!(valid_tag(tag), "{hostile:?}: {tag:?}");
        }
        for l in outputs["labels"].lines() {
            assert!(
                l.starts_with("org.opencontainers.image."),
                "{hostile:?}: {l:?}"
            );
        }
        assert!(!outputs["version"].contains('\n'), "{hostile:?}");
        for line in run.stdout.lines() {
            assert!(valid_tag(line), "{hostile:?}: stdout line {line:?}");
        }

        let run = tagguard(repo.path())
            .args(["tags", "--format=gitlab", "--timestamp=20240102030405"])
            .args(["--branch", hostile, "--git-tag", &format!("rel-{hostile}")])
            .env("CI_PROJECT_URL", *hostile)
            .run()
            .success();
        let vars: Vec<(&str, &str)> = run
            .stdout
            .lines()
            .map(|l| {
                l.split_once('=')
                    .unwrap_or_else(|| panic!("{hostile:?}: {l:?}"))
            })
            .collect();
        let keys: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            ["TAGGUARD_TAGS", "TAGGUARD_VERSION", "TAGGUARD_LABELS"],
            "{hostile:?}: {}",
            run.stdout
        );
        for r in vars[0].1.split(',') {
            let tag = r
                .strip_prefix("registry.example/acme/app:")
                .unwrap_or_else(|| panic!("{hostile:?}: foreign reference {r:?}"));
            assert!(valid_tag(tag), "{hostile:?}: {tag:?}");
        }
    }
}
