//! The `tagguard` binary: parse the arguments, run the command, exit with its code.

mod audit_cmd;
mod check_cmd;
mod cli;
mod docs_cmd;
mod exit;
mod hook_cmd;
mod output;
mod policy_cmd;
mod prune_cmd;
mod push_cmd;
mod render;
mod setup;
mod tags_cmd;

fn main() -> std::process::ExitCode {
    let cli = cli::parse();
    exit::install_reporting();
    let result = match cli.command {
        cli::Command::Tags(args) => tags_cmd::run(&args),
        cli::Command::Check(args) => check_cmd::run(&args),
        cli::Command::Push(args) => push_cmd::run(&args),
        cli::Command::Policy(cmd) => policy_cmd::run(&cmd),
        cli::Command::Hook(cmd) => hook_cmd::run(&cmd),
        cmd @ (cli::Command::Completions { .. } | cli::Command::Man) => docs_cmd::run(&cmd),
        cli::Command::Audit(args) => audit_cmd::run(&args),
        cli::Command::Prune(args) => prune_cmd::run(&args),
    };
    exit::finish(result)
}
