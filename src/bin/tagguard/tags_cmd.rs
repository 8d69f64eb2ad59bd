//! `tagguard tags`: compute the tags of this build and print them.

use std::collections::HashMap;

use miette::Result;
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

/// Gathers the context, loads the policy and computes the tags: the shared first step of every
/// command that needs tags.
pub fn compute(args: &BuildArgs) -> Result<Computed> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = Overrides {
        sha: args.sha.clone(),
        branch: args.branch.clone(),
        git_tag: args.git_tag.clone(),
        pr_number: args.pr_number.clone(),
        build_id: args.build_id.clone(),
        build_number: args.build_number.clone(),
        timestamp: args.timestamp,
    };
    let ctx = context::gather(&args.repo, &env, &overrides, chrono::Utc::now())?;
    log::debug!("context: {ctx:?}");
    let policy = Policy::load(args.policy.as_deref(), ctx.root.as_deref())?;
    log::info!("policy: {}", policy.source.name);
    let computed = tags::compute(&policy, &ctx, &args.images)?;
    log::debug!("computed: {computed:?}");
    Ok(computed)
}
