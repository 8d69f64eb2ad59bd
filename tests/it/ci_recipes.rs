//! Each recipe of docs/ci, run as its CI would: the tagguard step is taken from the pipeline in
//! the document (so the document is what is tested) and run under bash in a detached checkout,
//! with the pipeline's own variables, that CI's documented variables, tagguard on PATH (the
//! recipe's install line then does nothing) and the registry's credentials where the recipe's
//! credential step would leave them, against a real registry on loopback. The build step is
//! the registry seeded with skopeo.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::ci_tags::{self, Build};
use crate::support::git::Repo;
use crate::support::gitlab_job::tagguard_bin;
use crate::support::registry::{Image, Mode, PASSWORD, Registry, USER};

/// The pipeline file in a recipe: its first fenced block in `lang`.
fn pipeline(doc: &str, lang: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/ci")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no ```{lang} block in {}", path.display()))
        + lang.len()
        + 4;
    let len = text[start..].find("\n```").expect("the block ends");
    text[start..start + len + 1].to_owned()
}

fn yaml(doc: &str) -> Value {
    serde_saphyr::from_str(&pipeline(doc, "yaml")).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

/// The tagguard step of a pipeline: the variables the pipeline sets, and the script.
struct Step {
    vars: Vec<(String, String)>,
    script: String,
}

fn map(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_owned)))
                .collect()
        })
        .unwrap_or_default()
}

fn lines(v: &Value) -> String {
    let list = v.as_array().expect("a list of commands");
    let lines: Vec<&str> = list.iter().map(|l| l.as_str().unwrap()).collect();
    lines.join("\n")
}

/// The list item of `list` whose `key` is `value`.
fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|s| s[key] == value))
        .unwrap_or_else(|| panic!("no item with {key}: {value}"))
}

fn codebuild() -> Step {
    let p = yaml("codebuild.md");
    Step {
        vars: map(&p["env"]["variables"]),
        script: lines(&p["phases"]["post_build"]["commands"]),
    }
}

fn cloud_build() -> Step {
    let p = yaml("cloud-build.md");
    assert_eq!(p["options"]["automapSubstitutions"], true);
    let step = find(&p["steps"], "id", "tagguard");
    Step {
        vars: map(&p["substitutions"]),
        script: step["script"].as_str().unwrap().to_owned(),
    }
}

fn azure() -> Step {
    let p = yaml("azure-pipelines.md");
    let step = find(&p["steps"], "name", "tagguard");
    Step {
        vars: map(&p["variables"]),
        script: step["bash"].as_str().unwrap().to_owned(),
    }
}

fn jenkins() -> Step {
    let file = pipeline("jenkins.md", "groovy");
    let env_block = file.split("environment {").nth(1).unwrap();
    let env_block = &env_block[..env_block.find('}').unwrap()];
    let vars = env_block
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect();
    let marker = "sh label: 'tagguard push', script: '''";
    let body = file.split(marker).nth(1).expect("the tagguard sh step");
    Step {
        vars,
        script: body[..body.find("'''").unwrap()].to_owned(),
    }
}

fn circleci() -> Step {
    let p = yaml("circleci.md");
    let job = &p["jobs"]["publish"];
    let run = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["run"]["name"] == "tagguard push")
        .expect("the tagguard run step");
    Step {
        vars: map(&job["environment"]),
        script: run["run"]["command"].as_str().unwrap().to_owned(),
    }
}

fn bitbucket() -> Step {
    let p = yaml("bitbucket.md");
    let step = p["definitions"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"]["name"] == "tagguard push")
        .expect("the tagguard step");
    Step {
        vars: Vec::new(),
        script: lines(&step["step"]["script"]),
    }
}

fn buildkite() -> Step {
    let p = yaml("buildkite.md");
    let step = find(&p["steps"], "key", "tagguard");
    Step {
        vars: map(&p["env"]),
        script: step["command"].as_str().unwrap().to_owned(),
    }
}

/// How the registry's credentials reach tagguard in a recipe.
enum Login {
    /// A credential step (`docker login`, `az acr login`, a token) left a Docker config.
    DockerConfig,
    /// The CI hands them over as variables of these names (secured variables, a binding).
    Vars(&'static str, &'static str),
}

struct Recipe {
    name: &'static str,
    step: fn() -> Step,
    vars: fn(Build, &str) -> Vec<(&'static str, String)>,
    login: Login,
    /// Variables the project sets (the registry is the test's), besides the pipeline's.
    project: &'static [(&'static str, &'static str)],
    /// The build repository and tag the build step pushed, from IMAGE and the commit.
    build_ref: fn(&str, &str) -> String,
    build_id: &'static str,
}

const RECIPES: [Recipe; 7] = [
    Recipe {
        name: "codebuild",
        step: codebuild,
        vars: ci_tags::codebuild,
        login: Login::DockerConfig,
        project: &[],
        build_ref: |image, _| format!("{image}/build:42"),
        build_id: "42",
    },
    Recipe {
        name: "cloud-build",
        step: cloud_build,
        vars: ci_tags::cloud_build,
        login: Login::DockerConfig,
        project: &[],
        build_ref: |image, _| format!("{image}/build:f2b3c0de-1111-4a4a-9b9b-0123456789ab"),
        build_id: "f2b3c0de11114a4a9b9b0123456789ab",
    },
    Recipe {
        name: "azure-pipelines",
        step: azure,
        vars: ci_tags::azure,
        login: Login::DockerConfig,
        project: &[],
        build_ref: |image, _| format!("{image}/build:1234"),
        build_id: "1234",
    },
    Recipe {
        name: "jenkins",
        step: jenkins,
        vars: ci_tags::jenkins,
        login: Login::Vars("TAGGUARD_USERNAME", "TAGGUARD_PASSWORD"),
        project: &[],
        build_ref: |image, sha| format!("{image}/build:{sha}-7"),
        build_id: "7",
    },
    Recipe {
        name: "circleci",
        step: circleci,
        vars: ci_tags::circleci,
        login: Login::DockerConfig,
        project: &[],
        build_ref: |image, _| format!("{image}/build:812"),
        build_id: "812",
    },
    Recipe {
        name: "bitbucket",
        step: bitbucket,
        vars: ci_tags::bitbucket,
        login: Login::Vars("REGISTRY_USER", "REGISTRY_PASSWORD"),
        project: &[("IMAGE", "acme/app")],
        build_ref: |image, _| format!("{image}/build:233"),
        build_id: "233",
    },
    Recipe {
        name: "buildkite",
        step: buildkite,
        vars: ci_tags::buildkite,
        login: Login::DockerConfig,
        project: &[],
        build_ref: |image, _| format!("{image}/build:59"),
        build_id: "59",
    },
];

/// Runs `recipe`'s tagguard step for `build` of `repo`'s HEAD against `r`; returns its output.
fn run(recipe: &Recipe, build: Build, repo: &Repo, r: &Registry) -> String {
    let step = (recipe.step)();
    let home = tempfile::tempdir().unwrap();
    let bin = tagguard_bin();
    let mut vars: Vec<(String, String)> = step.vars;
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
    };
    vars.extend(owned(recipe.project));
    vars.push((s("REGISTRY"), r.host.clone()));
    vars.push((s("_REGISTRY"), r.host.clone()));
    vars.extend(
        (recipe.vars)(build, &repo.head())
            .into_iter()
            .map(|(k, v)| (s(k), v)),
    );
    match recipe.login {
        Login::DockerConfig => {
            let config = home.path().join(".docker");
            std::fs::create_dir_all(&config).unwrap();
            let body = serde_json::json!({ "auths": { (r.host.clone()): {
                "auth": base64(&format!("{USER}:{PASSWORD}")) } } });
            std::fs::write(config.join("config.json"), body.to_string()).unwrap();
        }
        Login::Vars(user, password) => {
            vars.extend([(s(user), s(USER)), (s(password), s(PASSWORD))]);
        }
    }
    let bash_env = home.path().join("bash_env");
    std::fs::write(&bash_env, "").unwrap();
    let path = std::env::join_paths(std::iter::once(bin.path().to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -eo pipefail\n{}", step.script))
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .env("TAGGUARD_SETTLE", "0")
        .env("BASH_ENV", &bash_env)
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("bash runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}: {output}", recipe.name);
    output
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The image the recipe pushes to: IMAGE as the pipeline (or the project) sets it.
fn image_of(recipe: &Recipe) -> String {
    let step = (recipe.step)();
    step.vars
        .iter()
        .chain(
            &recipe
                .project
                .iter()
                .map(|(k, v)| (s(k), s(v)))
                .collect::<Vec<_>>(),
        )
        .find(|(k, _)| k == "IMAGE" || k == "_IMAGE")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{}: no IMAGE", recipe.name))
}

fn recipe_pushes_a_branch_build_then_a_release(recipe: &Recipe) {
    let r = Registry::start(Mode::Basic);
    let repo = Repo::new();
    repo.detach();
    let image = image_of(recipe);
    let build_ref = (recipe.build_ref)(&image, &repo.head());
    let (build_repo, build_tag) = build_ref.rsplit_once(':').unwrap();
    let digest = r.seed(&Image::random(), build_repo, build_tag);

    let out = run(recipe, Build::Branch("main"), &repo, &r);
    let tags = r.tags_of(&image);
    let short = format!("sha-{}", &repo.head()[..7]);
    let build_tag = tags
        .iter()
        .find(|t| {
            t.len() == 15 + recipe.build_id.len() && t.ends_with(&format!("-{}", recipe.build_id))
        })
        .unwrap_or_else(|| panic!("{}: no build tag in {tags:?}\n{out}", recipe.name));
    for tag in [&short, build_tag] {
        assert_eq!(
            r.digest_of(&image, tag).as_ref(),
            Some(&digest),
            "{}: {tag}",
            recipe.name
        );
    }
    assert!(
        !tags.iter().any(|t| t == "latest"),
        "{}: {tags:?}",
        recipe.name
    );
    assert!(
        out.contains("TAGGUARD_STATUS=ok")
            || out.contains("variable=TAGGUARD_STATUS;isOutput=true]ok"),
        "{}: {out}",
        recipe.name
    );

    repo.annotated_tag("v1.2.3");
    run(recipe, Build::Tag("v1.2.3"), &repo, &r);
    for tag in ["1.2.3", "1.2", "1", "latest"] {
        assert_eq!(
            r.digest_of(&image, tag).as_ref(),
            Some(&digest),
            "{}: {tag}",
            recipe.name
        );
    }
}

#[test]
fn codebuild_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[0]);
}

#[test]
fn cloud_build_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[1]);
}

#[test]
fn azure_pipelines_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[2]);
}

#[test]
fn jenkins_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[3]);
}

#[test]
fn circleci_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[4]);
}

#[test]
fn bitbucket_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[5]);
}

#[test]
fn buildkite_recipe() {
    recipe_pushes_a_branch_build_then_a_release(&RECIPES[6]);
}
