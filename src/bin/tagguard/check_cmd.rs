//! `tagguard check`: compute the tags, look each up in the registry, render the report.

use miette::Result;
use tagguard::check;
use tagguard::report::Status;

use crate::cli::CheckArgs;
use crate::{render, setup};

pub fn run(args: &CheckArgs) -> Result<Status> {
    setup::preflight(args.format)?;
    let computed = setup::compute(&args.build)?;
    setup::require_images(&computed, "check")?;
    let source = args
        .source
        .as_deref()
        .map(setup::parse_source)
        .transpose()?;
    let registries = setup::registries(&args.registry)?;
    let report = setup::runtime()?.block_on(check::run(
        &computed,
        source.as_ref(),
        &registries,
        args.build.allow_dirty,
    ));
    render::report(args.format, "tagguard check", Some(&computed), &report)?;
    Ok(report.status())
}
