//! `tagguard push`: check, then write only what the policy allows, and prove it.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use miette::{Result, miette};
use serde_json::json;
use tagguard::push::{self, Progress, PushError, PushOptions};

use crate::check_cmd::{self, Rendering};
use crate::cli::PushArgs;
use crate::exit::Outcome;
use crate::{output, tags_cmd};

pub fn run(args: &PushArgs) -> Result<Outcome> {
    let computed = tags_cmd::compute(&args.build)?;
    check_cmd::require_images(&computed, "push")?;
    if let Some(refusal) = tags_cmd::dirty_refusal(&computed, args.build.allow_dirty) {
        output::refusal(&refusal);
        return Ok(Outcome::Refused);
    }
    let source = check_cmd::parse_source(&args.source)?;
    let config = check_cmd::config(&args.registry)?;
    let reporter = Reporter::new();
    let progress = |p: Progress| reporter.report(p);
    let options = PushOptions {
        dry_run: args.dry_run,
        chunk_size: (args.chunk_size as usize) << 20,
        progress: &progress,
    };
    let result = check_cmd::runtime()?.block_on(push::push(&computed, &source, &config, &options));
    reporter.finish();
    let report = result.map_err(|e: PushError| miette!("{e}"))?;
    let written: Vec<String> = report.written.iter().map(|w| w.reference()).collect();
    let mut github = check_cmd::github_outputs(&report.decisions);
    github.push(("written", written.join("\n")));
    github.push(("verified", report.verified.to_string()));
    let mut dotenv = check_cmd::dotenv(&report.decisions);
    dotenv.push(("TAGGUARD_WRITTEN", written.join(",")));
    check_cmd::render(
        args.format,
        &Rendering {
            title: if report.dry_run {
                "tagguard push (dry run)"
            } else {
                "tagguard push"
            },
            decisions: &report.decisions,
            json: json!({
                "decisions": report.decisions,
                "written": report.written,
                "verified": report.verified,
                "dry_run": report.dry_run,
                "registry_refusal": report.registry_refusal,
            }),
            github,
            dotenv,
        },
    )?;
    if let Some(refusal) = &report.registry_refusal {
        output::refusal(refusal);
        if !written.is_empty() {
            output::refusal(&format!(
                "already written before the refusal: {}",
                written.join(", ")
            ));
        }
        return Ok(Outcome::Refused);
    }
    let outcome = check_cmd::refusals(&report.decisions);
    if outcome == Outcome::Refused {
        output::refusal("nothing was written");
    } else if report.dry_run {
        output::note("dry run: nothing was written");
    } else if !written.is_empty() {
        output::note(&format!("pushed and verified {} tag(s)", written.len()));
    }
    Ok(outcome)
}

/// Renders progress on stderr: a line that updates in place on a terminal, plain lines at most
/// every few seconds per blob in CI logs.
struct Reporter {
    terminal: bool,
    state: Mutex<(Instant, bool)>,
}

impl Reporter {
    fn new() -> Self {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new((Instant::now(), false)),
        }
    }

    fn report(&self, p: Progress) {
        let mut state = self.state.lock().expect("progress lock");
        match p {
            Progress::Blob {
                repository,
                digest,
                size,
                done,
            } => {
                let mib = |b: u64| b as f64 / (1 << 20) as f64;
                let line = format!(
                    "copying {} to {repository}: {:.1}/{:.1} MiB",
                    &digest.to_string()[..19.min(digest.to_string().len())],
                    mib(done),
                    mib(size)
                );
                if self.terminal {
                    output::progress(&format!("\r\x1b[2K{line}"));
                    state.1 = true;
                } else if done == 0 || done >= size || state.0.elapsed() >= Duration::from_secs(5) {
                    output::note(&line);
                    state.0 = Instant::now();
                }
            }
            Progress::Tagged { reference, digest } => {
                if state.1 {
                    output::progress("\r\x1b[2K");
                    state.1 = false;
                }
                output::note(&format!("wrote {reference} -> {digest}"));
            }
        }
    }

    fn finish(&self) {
        if self.state.lock().expect("progress lock").1 {
            output::progress("\r\x1b[2K");
        }
    }
}
