//! Exit codes, a published contract: 0 ok, 1 error, 2 usage (clap), 3 refused. A run that made a
//! report exits with what the report says ([`Status::exit_code`]); one that failed before it had
//! a report exits 1.

use std::io::Write;
use std::process::ExitCode;

use tagguard::report::Status;

pub const ERROR: u8 = 1;

pub fn install_reporting() {
    // tagguard's own warnings by default; other crates' log lines (rustls' verifier logs every
    // rejected certificate as an ERROR) only when RUST_LOG asks: their failures reach the user
    // as tagguard's errors, which say what to do.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("tagguard=warn"))
        .format_timestamp(None)
        .init();
    miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .build(),
        )
    }))
    .expect("the report hook is installed once");
}

/// Kept for the commands that have no report (`policy`).
pub use tagguard::report::Status as Outcome;

pub fn finish(result: miette::Result<Status>) -> ExitCode {
    match result {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(report) => {
            // A closed stderr (`2>&1 | head -c 10`) must not turn an error into a panic.
            let _ = writeln!(std::io::stderr().lock(), "{report:?}");
            ExitCode::from(ERROR)
        }
    }
}
