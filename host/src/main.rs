//! The `sous` binary: parse the command line, set up logs, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use sous::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sous::telemetry::init_logging(cli.log_format);
    let result = match &cli.command {
        Command::Render(args) => sous::cli::render::run(args),
        Command::Test(args) => sous::cli::test::run(args),
        Command::Push(args) => sous::cli::push::run(args),
        Command::Run(args) => sous::cli::run::run(args),
        Command::New(args) => sous::cli::new::run(args),
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
