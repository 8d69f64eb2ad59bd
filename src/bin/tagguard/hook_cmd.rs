//! `tagguard hook pre-push` and `tagguard hook install`.

use std::collections::HashMap;
use std::io::Read as _;

use miette::{IntoDiagnostic, Result, WrapErr};
use tagguard::finding::{Finding, Severity};
use tagguard::hook::install::{self, Installed};
use tagguard::hook::pre_push::{Lookup, NewRelease, ReleaseImage};
use tagguard::hook::{PushedRef, code, observe, pre_push, pushed_ref, release_images};
use tagguard::policy::{OnConflict, Policy, RegistryCheck};
use tagguard::registries::{Registries, RegistryConfig};
use tagguard::report::{Report, Status};
use tagguard_registry::CredentialConfig;

use crate::cli::{HookCommand, PrePushArgs};
use crate::{output, render, setup};

pub fn run(cmd: &HookCommand) -> Result<Status> {
    match cmd {
        HookCommand::PrePush(args) => pre_push(args),
        HookCommand::Install { chain, repo } => {
            let exe = std::env::current_exe()
                .into_diagnostic()
                .wrap_err("could not tell where this tagguard binary is")?;
            match install::install(repo, &exe, *chain)? {
                Installed::Created(path) => output::line(&format!("installed {}", path.display())),
                Installed::Updated(path) => output::line(&format!("updated {}", path.display())),
                Installed::Chained { hook, kept } => output::line(&format!(
                    "installed {}; it runs the previous hook, now {}, first",
                    hook.display(),
                    kept.display()
                )),
            }
            let root = tagguard::git::read(repo)?.map(|r| r.root);
            let policy = Policy::load(None, root.as_deref().or(Some(repo.as_path())))?;
            if policy.hooks.pre_push_registry == RegistryCheck::Off {
                output::note(&format!(
                    "note: the policy ({}) says `hooks: {{ pre-push: {{ registry: off }} }}`: the hook checks release tags' names and moves, not the registry",
                    policy.source.name
                ));
            } else if policy.images.is_empty() {
                output::note(&format!(
                    "note: the policy ({}) names no image, so the hook can check no registry: it checks release tags' names and moves only. Name the images under `image:` or `images:` in the policy to have release tags checked against what the registry holds",
                    policy.source.name
                ));
            }
            Ok(Status::Ok)
        }
    }
}

fn pre_push(args: &PrePushArgs) -> Result<Status> {
    let refs = pushed_refs(args)?;
    // Branch pushes must stay fast and must not fail on a broken policy: no tag, no work.
    if !pre_push::pushes_tags(&refs) {
        return Ok(Status::Ok);
    }
    let repo = tagguard::git::read(&args.repo)?;
    let root = repo.as_ref().map(|r| r.root.clone());
    let policy = Policy::load(args.policy.as_deref(), root.as_deref())?;
    let review = pre_push::review_refs(&policy.release, &refs);
    let mut findings = review.findings;
    if policy.hooks.pre_push_registry != RegistryCheck::Off && !review.releases.is_empty() {
        if policy.images.is_empty() && args.images.is_empty() {
            findings.extend(review.releases.iter().map(|r| {
                Finding::new(
                    code::NO_REGISTRY,
                    Severity::Warning,
                    format!(
                        "release tag {}: the policy ({}) names no image, so no registry was asked whether its image tags are taken",
                        r.tag, policy.source.name
                    ),
                )
                .about(&r.tag)
                .help("name the images under `image:` or `images:` in the policy (or pass --image to the hook)")
            }));
        }
        let observations = observe(args, &policy, &review.releases)?;
        findings.extend(pre_push::review_registry(
            policy.hooks.pre_push_registry,
            &observations,
        ));
    }
    let report = Report {
        findings,
        ..Report::default()
    };
    render::hook(&report);
    Ok(report.status())
}

/// What the registry holds at each new release's immutable image tags.
fn observe(
    args: &PrePushArgs,
    policy: &Policy,
    releases: &[NewRelease],
) -> Result<Vec<ReleaseImage>> {
    let repo = git2::Repository::discover(&args.repo)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "could not open the git repository at {}",
                args.repo.display()
            )
        })?;
    let mut wanted: Vec<(String, String, release_images::ReleaseRef)> = Vec::new(); // (git tag, commit, ref)
    let mut observations = Vec::new();
    for release in releases {
        let commit = repo
            .revparse_single(&release.object)
            .and_then(|o| o.peel_to_commit())
            .into_diagnostic()
            .wrap_err_with(|| format!("release tag {} names no commit", release.tag))?;
        let sha = commit.id().to_string();
        let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default();
        match release_images::immutable_release_refs(policy, &release.tag, &sha, time, &args.images)
        {
            Ok(refs) => wanted.extend(
                refs.into_iter()
                    .map(|r| (release.tag.clone(), sha.clone(), r)),
            ),
            Err(e) => observations.push(ReleaseImage {
                tag: release.tag.clone(),
                reference: "its image tags".to_owned(),
                commit: sha,
                on_conflict: OnConflict::Refuse,
                lookup: Lookup::Failed {
                    error: format!("the policy cannot compute them: {e}"),
                },
            }),
        }
    }
    if wanted.is_empty() {
        log::info!("pre-push: no images to look releases up in");
        return Ok(observations);
    }
    // A push should not wait long: short limits, one retry, unless the flags say otherwise.
    let connection = &args.connection;
    let timeout = connection.timeout.unwrap_or(10);
    let transport = setup::transport(connection, timeout, timeout.clamp(1, 5), 1);
    let registries = Registries::new(RegistryConfig {
        credentials: CredentialConfig {
            explicit: None,
            env: std::env::vars().collect(),
        },
        transport,
        docker_push_deadline: None,
    });
    let references: Vec<String> = wanted.iter().map(|(_, _, r)| r.reference.clone()).collect();
    let lookups = setup::runtime()?.block_on(observe::lookup_all(&references, &registries));
    observations.extend(
        wanted
            .into_iter()
            .zip(lookups)
            .map(|((tag, commit, r), lookup)| ReleaseImage {
                tag,
                reference: r.reference,
                commit,
                on_conflict: r.on_conflict,
                lookup,
            }),
    );
    Ok(observations)
}

/// From git's stdin, or from the pre-commit framework's environment when it runs us.
fn pushed_refs(args: &PrePushArgs) -> Result<Vec<PushedRef>> {
    let env: HashMap<String, String> = std::env::vars().collect();
    if let Some(one) = pushed_ref::from_pre_commit_env(&env, |name| resolve(args, name)) {
        return Ok(vec![one]);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .into_diagnostic()
        .wrap_err("could not read the pushed refs from stdin")?;
    Ok(pushed_ref::parse_lines(&input)?)
}

fn resolve(args: &PrePushArgs, name: &str) -> Option<String> {
    let repo = git2::Repository::discover(&args.repo).ok()?;
    let object = repo.revparse_single(name).ok()?;
    Some(object.id().to_string())
}
