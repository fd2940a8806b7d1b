//! The `sous` binary, built once per process, for tests that run it as a
//! user would (e.g. `sous push` against the e2e control plane).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::guests::repo_root;

/// A command running the `sous` binary of this workspace (built on first use).
pub fn sous() -> Command {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    Command::new(BINARY.get_or_init(|| build(&[])))
}

/// A command running the release build of `sous` (built on first use), for
/// measurements.
pub fn sous_release() -> Command {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    Command::new(BINARY.get_or_init(|| build(&["--release"])))
}

fn build(profile: &[&str]) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "sous",
            "--bin",
            "sous",
            "--message-format=json",
        ])
        .args(profile)
        .current_dir(repo_root())
        .output()
        .expect("running cargo to build sous");
    assert!(
        output.status.success(),
        "building sous failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The last compiler artifact with an executable is the binary.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next_back()
        .expect("cargo reports the sous executable")
}
