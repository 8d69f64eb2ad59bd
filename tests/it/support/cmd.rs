//! Runs the real `tagguard` binary with a cleared environment: no stray CI, GITHUB_*, GITLAB_*,
//! DOCKER_CONFIG or HOME from the machine running the tests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::git::Repo;

pub struct Tagguard {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

pub fn tagguard(dir: &Path) -> Tagguard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagguard"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        // The settle wait (see docs/push-protocol.md) is a second per push that creates an
        // immutable tag; tests about it set their own value.
        .env("TAGGUARD_SETTLE", "0");
    Tagguard { cmd, stdin: None }
}

/// The one push runner: `tagguard push --image IMAGE --source SOURCE` in `repo`; the test adds
/// the flags and variables it is about (`.args`, `.env`) and runs it (`.run()`).
pub fn push(repo: &Repo, image: &str, source: &str) -> Tagguard {
    tagguard(repo.path()).args(["push", "--image", image, "--source", source])
}

impl Tagguard {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg_path(mut self, path: &Path) -> Self {
        self.cmd.arg(path);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in pairs {
            self.cmd.env(k, v);
        }
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    pub fn run(mut self) -> Run {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("tagguard starts");
        if let Some(input) = self.stdin.take() {
            child.stdin.take().unwrap().write_all(&input).unwrap();
        }
        let out = child.wait_with_output().expect("tagguard runs");
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing both streams when it differs.
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn success(self) -> Self {
        self.code(0)
    }

    /// stderr with miette's wrapping and box drawing undone, for `contains` checks.
    pub fn err_text(&self) -> String {
        self.stderr
            .replace(['│', '×', '╰', '─', '╭', '·', '┬'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// `(tag, field)` of each decision of a `--format json` report, in order: what `check` or
    /// `push` decided (`"action"`) for each tag.
    pub fn decisions(&self, field: &str) -> Vec<(String, String)> {
        let json = self.json();
        let tag = |d: &serde_json::Value, key: &str| d[key].as_str().unwrap().to_owned();
        json["decisions"]
            .as_array()
            .unwrap_or_else(|| panic!("no decisions: {json}"))
            .iter()
            .map(|d| (tag(d, "tag"), tag(d, field)))
            .collect()
    }
}
