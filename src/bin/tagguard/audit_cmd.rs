//! `tagguard audit`: read the repositories; the report renders like every other command's
//! ([`render::report`]) and its findings decide the exit code ([`Status`]): 3 on any finding.

use miette::Result;
use tagguard::audit;
use tagguard::policy::Policy;
use tagguard::report::Status;

use crate::cli::AuditArgs;
use crate::{render, setup};

pub fn run(args: &AuditArgs) -> Result<Status> {
    setup::preflight(args.format)?;
    let policy = Policy::load(args.policy.as_deref(), Some(&args.repo))?;
    let registries = setup::registries(&args.registry)?;
    let report = setup::runtime()?.block_on(audit::audit(
        &policy,
        &args.images,
        &registries,
        usize::from(args.concurrency),
    ));
    render::report(args.format, "tagguard audit", None, &report)?;
    Ok(report.status())
}
