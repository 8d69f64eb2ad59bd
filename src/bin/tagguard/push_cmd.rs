//! `tagguard push`: check, then write only what the policy allows, in phases, and prove it.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use miette::Result;
use tagguard::apply::{ApplyOptions, Progress};
use tagguard::audit::RecordMeta;
use tagguard::push;
use tagguard::report::Status;

use crate::cli::PushArgs;
use crate::{output, render, setup};

pub fn run(args: &PushArgs) -> Result<Status> {
    setup::preflight(args.format)?;
    let build = setup::build(&args.build)?;
    let computed = build.computed;
    setup::require_images(&computed, "push")?;
    let record = build.record.then(|| RecordMeta::of_build(&build.context));
    let source = setup::parse_source(&args.source)?;
    let registries = tagguard::registries::Registries::new(tagguard::registries::RegistryConfig {
        docker_push_deadline: Some(Duration::from_secs(args.docker_push_deadline)),
        ..setup::registry_config(&args.registry)?
    });
    let reporter = Reporter::new();
    let progress = |p: Progress| reporter.report(p);
    let options = ApplyOptions {
        dry_run: args.dry_run,
        chunk_size: (args.chunk_size as usize) << 20,
        settle: args.settle,
        progress: &progress,
    };
    let report = setup::runtime()?.block_on(push::run(
        &computed,
        &source,
        &registries,
        args.build.allow_dirty,
        &options,
        record.as_ref(),
    ));
    reporter.finish();
    let title = if report.dry_run {
        "tagguard push (dry run)"
    } else {
        "tagguard push"
    };
    render::report(args.format, title, Some(&computed), &report)?;
    Ok(report.status())
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
