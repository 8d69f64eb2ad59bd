//! `tagguard check`: compute the tags, look each up in the registry, render the decisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::time::Duration;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use serde_json::json;
use tagguard::check::{self, CheckConfig};
use tagguard::decision::{Action, Decision};
use tagguard::registry::{CredentialConfig, TransportConfig};
use tagguard::secret::Secret;

use crate::cli::{CheckArgs, Format};
use crate::exit::Outcome;
use crate::{output, tags_cmd};

pub fn run(args: &CheckArgs) -> Result<Outcome> {
    let computed = tags_cmd::compute(&args.build)?;
    if computed.images.is_empty() {
        return Err(miette!(
            "check needs the images to look up: name them under `images:` in the policy or pass --image"
        ));
    }
    let explicit = match (&args.username, args.password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .into_diagnostic()
                .wrap_err("could not read the password from stdin")?;
            let password = Secret::new(password.trim_end_matches(['\n', '\r']));
            Some((user.clone(), password))
        }
        _ => None,
    };
    let config = CheckConfig {
        credentials: CredentialConfig {
            explicit,
            env: std::env::vars().collect(),
        },
        transport: TransportConfig {
            insecure: args.insecure_registry.clone(),
            ca_file: args.ca_file.clone(),
            timeout: Duration::from_secs(args.timeout.max(1)),
            ..TransportConfig::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .into_diagnostic()?;
    let decisions = runtime
        .block_on(check::check(&computed, args.source.as_deref(), &config))
        .map_err(|e| miette!("{e}"))?;

    match args.format {
        Format::Text => output::raw(&table(&decisions)),
        Format::Json => output::json(&json!({ "decisions": decisions })),
        Format::Github => {
            output::raw(&table(&decisions));
            for d in decisions.iter().filter(|d| d.is_refusal()) {
                output::line(&format!(
                    "::error title=tagguard refused {}:{}::{}",
                    d.image,
                    d.tag,
                    escape_annotation(&d.to_string())
                ));
            }
            output::github_outputs(&github_outputs(&decisions))?;
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                output::append(&path, &markdown(&decisions))
                    .wrap_err("could not write $GITHUB_STEP_SUMMARY")?;
            }
        }
        Format::Gitlab => output::dotenv(&dotenv(&decisions)),
    }
    let refused: Vec<&Decision> = decisions.iter().filter(|d| d.is_refusal()).collect();
    for d in &refused {
        output::refusal(&d.to_string());
    }
    Ok(if refused.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

fn short(d: &Option<tagguard::registry::Digest>) -> String {
    d.as_ref().map_or_else(
        || "-".to_owned(),
        |d| format!("{}:{}", d.algorithm(), &d.hex()[..12.min(d.hex().len())]),
    )
}

fn table(decisions: &[Decision]) -> String {
    let rows: Vec<[String; 4]> = decisions
        .iter()
        .map(|d| {
            [
                format!("{}:{}", d.image, d.tag),
                d.action.to_string(),
                short(&d.current),
                short(&d.desired),
            ]
        })
        .collect();
    let header = [
        "TAG".to_owned(),
        "ACTION".into(),
        "CURRENT".into(),
        "DESIRED".into(),
    ];
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn markdown(decisions: &[Decision]) -> String {
    let mut out = String::from(
        "### tagguard check\n\n| Tag | Action | Current | Desired |\n| --- | --- | --- | --- |\n",
    );
    for d in decisions {
        let action = if d.is_refusal() {
            "**refuse**".to_owned()
        } else {
            d.action.to_string()
        };
        let _ = writeln!(
            out,
            "| `{}:{}` | {action} | `{}` | `{}` |",
            d.image,
            d.tag,
            short(&d.current),
            short(&d.desired)
        );
    }
    out.push('\n');
    out
}

fn refs_with(decisions: &[Decision], action: Action) -> Vec<String> {
    decisions
        .iter()
        .filter(|d| d.action == action)
        .map(|d| format!("{}:{}", d.image, d.tag))
        .collect()
}

const ACTIONS: [(Action, &str); 4] = [
    (Action::Create, "create"),
    (Action::Unchanged, "unchanged"),
    (Action::Move, "move"),
    (Action::Refuse, "refuse"),
];

fn github_outputs(decisions: &[Decision]) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<(&'static str, String)> = ACTIONS
        .iter()
        .map(|(a, name)| (*name, refs_with(decisions, *a).join("\n")))
        .collect();
    pairs.push((
        "refused",
        decisions.iter().any(Decision::is_refusal).to_string(),
    ));
    pairs.push(("decisions", json!({ "decisions": decisions }).to_string()));
    pairs
}

fn dotenv(decisions: &[Decision]) -> Vec<(&'static str, String)> {
    let names: BTreeMap<&str, &'static str> = [
        ("create", "TAGGUARD_CREATE"),
        ("unchanged", "TAGGUARD_UNCHANGED"),
        ("move", "TAGGUARD_MOVE"),
        ("refuse", "TAGGUARD_REFUSE"),
    ]
    .into();
    let mut pairs: Vec<(&'static str, String)> = ACTIONS
        .iter()
        .map(|(a, name)| (names[name], refs_with(decisions, *a).join(",")))
        .collect();
    pairs.push((
        "TAGGUARD_REFUSED",
        decisions.iter().any(Decision::is_refusal).to_string(),
    ));
    pairs
}

/// Workflow-command data: `%`, CR and LF must be escaped.
fn escape_annotation(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}
