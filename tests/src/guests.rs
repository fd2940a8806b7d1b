//! The guests, really built from `guests/`: the Rust ones with cargo, once per
//! process; every other language with its own `guests/<lang>/build`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

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

/// Builds every component of `guests/<language>` (`python`, `js`, `c`,
/// `go`) with that language's own `build` script, the first time the
/// language is asked for in this process, and returns the path of `name`'s
/// component, `guests/<language>/target/<name>.wasm`. The script installs the
/// language's toolchain when it is missing. Panics with its output if the
/// build fails.
pub fn component(language: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let dir = repo_root().join("guests").join(language);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.contains(language) {
        let output = Command::new(dir.join("build"))
            .output()
            .unwrap_or_else(|e| panic!("running guests/{language}/build: {e}"));
        assert!(
            output.status.success(),
            "guests/{language}/build failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        built.insert(language.to_string());
    }
    let path = dir.join("target").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "guests/{language}/build did not build {}",
        path.display()
    );
    path
}
