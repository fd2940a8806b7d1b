//! The `sous` binary: parse the command line, set up logs, run the subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use sous::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SOUS_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match &cli.command {
        Command::Render(args) => sous::cli::render::run(args),
        Command::Test(args) => sous::cli::test::run(args),
        Command::Push(args) => sous::cli::push::run(args),
        Command::Crds => sous::crd::definitions_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
