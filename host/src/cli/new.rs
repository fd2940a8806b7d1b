//! `sous new`: scaffold a guest project (see [`crate::scaffold`]).

use std::path::PathBuf;

use clap::Args;
use clap::builder::PossibleValuesParser;

use crate::scaffold;

/// Arguments of `sous new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The language to write the reconciler in.
    #[arg(long, value_parser = PossibleValuesParser::new(scaffold::languages()))]
    pub lang: String,
    /// The reconciler's name, a DNS-1123 label such as `my-operator`.
    pub name: String,
    /// Where to create the project [default: ./NAME].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs `sous new`: writes the project and prints the next three commands.
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let written = scaffold::create(&args.lang, &args.name, &dir)?;
    println!(
        "created {} ({} files, {})",
        dir.display(),
        written.len(),
        args.lang
    );
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  ./build         # -> target/{}.wasm", args.name);
    println!("  sous test .     # the golden cases under tests/");
    println!("  sous push ...   # see README.md: runs it in a cluster");
    Ok(())
}
