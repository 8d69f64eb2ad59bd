//! `tagguard tags`: compute the tags of this build and print them.

use miette::Result;
use tagguard::plan;
use tagguard::report::Status;

use crate::cli::{Format, TagsArgs};
use crate::{output, render, setup};

pub fn run(args: &TagsArgs) -> Result<Status> {
    setup::preflight(args.format)?;
    let build = setup::build(&args.build)?;
    let computed = build.computed;
    if let Some(refusal) = plan::dirty_tree(&computed, args.build.allow_dirty) {
        render::findings(&[refusal]);
        return Ok(Status::Refused);
    }
    if computed.tags.is_empty() {
        output::note("warning: the policy computed no tags for this build");
    }
    match args.format {
        Format::Text => output::tags_text(&computed),
        Format::Json => {
            let mut json = output::tags_json(&computed);
            json["ci"] = output::ci_json(&build.context);
            output::json(&json);
        }
        Format::Github => {
            output::tags_text(&computed);
            output::github_outputs(&output::tags_github(&computed))?;
        }
        Format::Gitlab | Format::Env => output::dotenv(&output::tags_dotenv(&computed)),
        Format::Azure => {
            output::tags_text(&computed);
            output::azure_outputs(&output::tags_dotenv(&computed));
        }
    }
    Ok(Status::Ok)
}
