//! `tagguard hook pre-push` and `tagguard hook install`.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use tagguard::hook::install::{self, Installed};
use tagguard::hook::{Finding, PushedRef, Severity, pre_push, pushed_ref};
use tagguard::policy::Policy;

use crate::cli::{HookCommand, PrePushArgs};
use crate::exit::Outcome;
use crate::output;

pub fn run(cmd: &HookCommand) -> Result<Outcome> {
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
            Ok(Outcome::Ok)
        }
    }
}

fn pre_push(args: &PrePushArgs) -> Result<Outcome> {
    let refs = pushed_refs(args)?;
    // Branch pushes must stay fast and must not fail on a broken policy: no tag, no work.
    if !pre_push::pushes_tags(&refs) {
        return Ok(Outcome::Ok);
    }
    let repo = tagguard::git::read(&args.repo)?;
    let root = repo.as_ref().map(|r| r.root.clone());
    let policy = Policy::load(args.policy.as_deref(), root.as_deref())?;
    let review = pre_push::review_refs(&policy.release, &refs);
    let findings = review.findings;
    Ok(report(&findings))
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
    pushed_ref::parse_lines(&input).map_err(|e| miette!("{e}"))
}

fn resolve(args: &PrePushArgs, name: &str) -> Option<String> {
    let repo = git2::Repository::discover(&args.repo).ok()?;
    let object = repo.revparse_single(name).ok()?;
    Some(object.id().to_string())
}

/// Findings on stderr, where git shows a hook's output; refusals fail the push.
fn report(findings: &[Finding]) -> Outcome {
    let mut err = std::io::stderr().lock();
    for f in findings {
        let word = match f.severity {
            Severity::Refuse => "refused",
            Severity::Warn => "warning",
        };
        let _ = writeln!(err, "tagguard: {word}: {f}");
        if let Some(hint) = f.hint() {
            let _ = writeln!(err, "  hint: {hint}");
        }
    }
    if findings.iter().any(|f| f.severity == Severity::Refuse) {
        let _ = writeln!(err, "tagguard: push refused: nothing was pushed");
        Outcome::Refused
    } else {
        Outcome::Ok
    }
}
