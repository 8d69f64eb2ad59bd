//! Runs a job of `templates/gitlab/tagguard.gitlab-ci.yml` as a GitLab runner's bash shell
//! would: the job's `variables`, then its `before_script` and `script` lines (after resolving
//! `extends:`) in one `bash` with `set -eo pipefail`, in a git checkout, with GitLab's
//! predefined variables and nothing else from the test's environment.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const TEMPLATE: &str = "templates/gitlab/tagguard.gitlab-ci.yml";

pub fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TEMPLATE);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A job with `extends:` resolved as GitLab does for these keys: `variables` merge (the
/// extending job wins), script lists are replaced whole.
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub variables: Vec<(String, String)>,
    pub before_script: Vec<String>,
    pub script: Vec<String>,
}

fn lines(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a script is a list")
        .iter()
        .map(|l| l.as_str().expect("script lines are strings").to_owned())
        .collect()
}

pub fn job(config: &Value, name: &str) -> Job {
    let def = &config[name];
    assert!(def.is_object(), "no job {name} in {TEMPLATE}");
    let parents: Vec<&str> = match &def["extends"] {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().map(|v| v.as_str().unwrap()).collect(),
        other => panic!("extends: {other}"),
    };
    let mut job = Job::default();
    for parent in parents {
        let p = self::job(config, parent);
        for (k, v) in p.variables {
            job.variables.retain(|(key, _)| *key != k);
            job.variables.push((k, v));
        }
        if !p.before_script.is_empty() {
            job.before_script = p.before_script;
        }
        if !p.script.is_empty() {
            job.script = p.script;
        }
    }
    if let Some(vars) = def["variables"].as_object() {
        for (k, v) in vars {
            let v = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            job.variables.retain(|(key, _)| key != k);
            job.variables.push((k.clone(), v));
        }
    }
    if !def["before_script"].is_null() {
        job.before_script = lines(&def["before_script"]);
    }
    if !def["script"].is_null() {
        job.script = lines(&def["script"]);
    }
    job
}

#[derive(Debug)]
pub struct JobRun {
    pub code: i32,
    pub output: String,
}

impl JobRun {
    pub fn code(self, expected: i32) -> JobRun {
        assert_eq!(
            self.code, expected,
            "job exited {}:\n{}",
            self.code, self.output
        );
        self
    }
}

/// The shell script a runner makes of `job`: its variables (unless `predefined` sets them),
/// then its `before_script` and `script` lines, stopping at the first failure.
pub fn script(job: &Job, predefined: &[(&str, String)]) -> String {
    let mut script = String::from("set -eo pipefail\n");
    // The job's variables may refer to predefined ones ($CI_REGISTRY_IMAGE); project
    // variables of the same name win.
    for (k, v) in &job.variables {
        if !predefined.iter().any(|(p, _)| p == k) {
            script.push_str(&format!("export {k}=\"{v}\"\n"));
        }
    }
    for line in job.before_script.iter().chain(&job.script) {
        script.push_str(line);
        script.push('\n');
    }
    script
}

/// Runs `job` in `dir`: `predefined` are GitLab's variables (and project variables, which win
/// over the job's own), `path_first` holds the tools the job's image would have.
pub fn run(job: &Job, dir: &Path, predefined: &[(&str, String)], path_first: &[PathBuf]) -> JobRun {
    let script = script(job, predefined);
    let mut path: Vec<PathBuf> = path_first.to_vec();
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .env("CI", "true")
        .env("GITLAB_CI", "true")
        .env("CI_PROJECT_DIR", dir)
        .envs(predefined.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash runs");
    JobRun {
        code: out.status.code().unwrap_or(-1),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A directory with `tagguard` (the binary under test) to put first on PATH.
pub fn tagguard_bin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tagguard"), dir.path().join("tagguard"))
        .unwrap();
    dir
}
