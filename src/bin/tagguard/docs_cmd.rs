//! `tagguard completions SHELL` and `tagguard man`: the command line described for shells and
//! for man(1), generated from the same definition clap parses with.

use clap::CommandFactory;
use miette::{IntoDiagnostic, Result};

use crate::cli::{Cli, Command};
use crate::exit::Outcome;
use crate::output;

pub fn run(command: &Command) -> Result<Outcome> {
    let mut cli = Cli::command();
    let mut text = Vec::new();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli, "tagguard", &mut text);
        }
        Command::Man => clap_mangen::Man::new(cli)
            .render(&mut text)
            .into_diagnostic()?,
        _ => unreachable!("main sends only completions and man here"),
    }
    output::raw(&String::from_utf8_lossy(&text));
    Ok(Outcome::Ok)
}
