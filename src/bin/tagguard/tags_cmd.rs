//! `tagguard tags`: compute the tags of this build and print them.

use std::collections::HashMap;

use miette::{Result, miette};
use tagguard::context::{self, Overrides};
use tagguard::plan;
use tagguard::policy::Policy;
use tagguard::report::Status;
use tagguard::tags::{self, Computed};

use crate::cli::{BuildArgs, Format, TagsArgs};
use crate::{output, render, setup};

pub fn run(args: &TagsArgs) -> Result<Status> {
    setup::preflight(args.format)?;
    let computed = compute(&args.build)?;
    if let Some(refusal) = plan::dirty_tree(&computed, args.build.allow_dirty) {
        render::findings(&[refusal]);
        return Ok(Status::Refused);
    }
    if computed.tags.is_empty() {
        output::note("warning: the policy computed no tags for this build");
    }
    match args.format {
        Format::Text => output::tags_text(&computed),
        Format::Json => output::json(&output::tags_json(&computed)),
        Format::Github => {
            output::tags_text(&computed);
            output::github_outputs(&output::tags_github(&computed))?;
        }
        Format::Gitlab => output::dotenv(&output::tags_dotenv(&computed)),
    }
    Ok(Status::Ok)
}

/// Loads the policy and gathers the context, then computes the tags: the shared first step of
/// every command that needs tags.
pub fn compute(args: &BuildArgs) -> Result<Computed> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let repo = tagguard::git::read(&args.repo)?;
    let root = repo.as_ref().map(|r| r.root.clone());
    let policy = Policy::load(args.policy.as_deref(), root.as_deref())?;
    log::info!("policy: {}", policy.source.name);
    let overrides = Overrides {
        sha: args.sha.clone(),
        branch: args.branch.clone(),
        git_tag: args.git_tag.clone(),
        pr_number: args.pr_number.clone(),
        build_id: args.build_id.clone(),
        build_number: args.build_number.clone(),
        timestamp: args.timestamp,
    };
    let ci = tagguard::ci::detect(&env);
    let ctx = context::from_parts(
        repo.as_ref(),
        ci,
        &env,
        &overrides,
        chrono::Utc::now(),
        &args.repo,
    )?;
    log::debug!("context: {ctx:?}");
    for image in &args.images {
        if let Some(why) = tagguard::policy::image_name_problem(image) {
            return Err(miette!("invalid --image {image:?}: {why}"));
        }
    }
    let computed = tags::compute(&policy, &ctx, &args.images)?;
    log::debug!("computed: {computed:?}");
    Ok(computed)
}
