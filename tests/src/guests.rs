//! The Rust guests, really built from `guests/rust` with cargo, once per process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
}

/// Builds every Rust guest (release, `wasm32-wasip2`) the first time it is
/// called and returns the path of the named guest's component, e.g.
/// `guest("my_app")`. Panics with cargo's output if the build fails.
pub fn guest(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build_all);
    let path = dir.join(format!("{crate_name}.wasm"));
    assert!(
        path.is_file(),
        "guest `{crate_name}` was not built at {}",
        path.display()
    );
    path
}

/// The bytes of [`guest`].
pub fn guest_bytes(crate_name: &str) -> Vec<u8> {
    std::fs::read(guest(crate_name)).expect("reading a built guest")
}

fn build_all() -> PathBuf {
    let workspace = repo_root().join("guests/rust");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .current_dir(&workspace)
        // The guests keep their own target directory (see guests/rust/.cargo/config.toml).
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("running cargo to build the guests");
    assert!(
        output.status.success(),
        "building the Rust guests failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    workspace.join("target/wasm32-wasip2/release")
}
