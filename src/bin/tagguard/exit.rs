//! Exit codes, a published contract: 0 ok, 1 error, 2 usage (clap), 3 refused by policy.

use std::io::Write;
use std::process::ExitCode;

/// What a command ended with when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The policy refused something (a finding, not a failure).
    Refused,
}

pub const OK: u8 = 0;
pub const ERROR: u8 = 1;
pub const REFUSED: u8 = 3;

pub fn install_reporting() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
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

pub fn finish(result: miette::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::from(OK),
        Ok(Outcome::Refused) => ExitCode::from(REFUSED),
        Err(report) => {
            // A closed stderr (`2>&1 | head -c 10`) must not turn an error into a panic.
            let _ = writeln!(std::io::stderr().lock(), "{report:?}");
            ExitCode::from(ERROR)
        }
    }
}
