//! The host's OCI image archive, built by `.ci/image` (the release `sous`
//! binary packed by umoci, no daemon) once per test process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::guests::repo_root;

/// The tag the archive's index names.
pub const TAG: &str = "sous:e2e";

/// Builds the image archive the first time it is called and answers its
/// path; the error says why it could not be built.
pub fn archive() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let archive = target.join("e2e-image/sous.tar");
    let output = Command::new(repo_root().join(".ci/image"))
        .arg(&archive)
        .arg(TAG)
        .output()
        .map_err(|error| format!("running .ci/image: {error}"))?;
    if output.status.success() {
        Ok(archive)
    } else {
        Err(format!(
            ".ci/image failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
