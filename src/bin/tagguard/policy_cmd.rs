//! `tagguard policy check|schema|default`.

use std::path::Path;

use miette::{IntoDiagnostic, Result};
use tagguard::policy::{self, Policy};

use crate::cli::{PolicyCommand, Preset};
use crate::exit::Outcome;
use crate::output;

pub fn run(cmd: &PolicyCommand) -> Result<Outcome> {
    match cmd {
        PolicyCommand::Check { file } => {
            let root = tagguard::git::read(Path::new("."))
                .ok()
                .flatten()
                .map(|r| r.root);
            let found = file.clone().or_else(|| {
                root.map(|r| r.join(policy::DEFAULT_FILE_NAME))
                    .filter(|p| p.exists())
            });
            let policy = Policy::load(found.as_deref(), None)?;
            let images = match policy.images.len() {
                0 => "no images".to_owned(),
                1 => "1 image".to_owned(),
                n => format!("{n} images"),
            };
            output::line(&format!(
                "{} is valid: {} rules, {images}",
                policy.source.name,
                policy.rules.len()
            ));
        }
        PolicyCommand::Schema => {
            let text = serde_json::to_string_pretty(&policy::schema()).into_diagnostic()?;
            output::line(&text);
        }
        PolicyCommand::Default { preset } => output::raw(match preset {
            Preset::Tagguard => policy::DEFAULT_POLICY,
            Preset::MetadataAction => policy::METADATA_ACTION_POLICY,
        }),
    }
    Ok(Outcome::Ok)
}
