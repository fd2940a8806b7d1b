//! Embeds the `sous new` scaffolds: every language's `guests/<lang>/template/`
//! and `guests/<lang>/sdk/`, as a table of files in `$OUT_DIR/scaffolds.rs`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Folders that hold build outputs or caches, never sources.
const SKIPPED: &[&str] = &["target", "node_modules", "__pycache__", ".venv"];

fn main() {
    // Read when the script runs, not baked in when it is compiled: clones of
    // the repo sharing one target dir share this script's binary.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let guests = Path::new(&manifest_dir).join("../guests");
    // Only the embedded folders are watched: watching `guests/` would rerun
    // this (and rebuild the host) whenever a guest is built into its target
    // dir. A new language's folder is picked up on the next change here.
    println!("cargo:rerun-if-changed=build.rs");
    let mut table = String::from("&[\n");
    let mut languages: Vec<PathBuf> = fs::read_dir(&guests)
        .expect("reading guests/")
        .map(|entry| entry.expect("reading guests/").path())
        .filter(|dir| dir.join("template").is_dir())
        .collect();
    languages.sort();
    for language in &languages {
        let name = language.file_name().unwrap().to_str().unwrap();
        for (part, dir) in [("Template", "template"), ("Sdk", "sdk")] {
            let root = language.join(dir);
            println!("cargo:rerun-if-changed={}", root.display());
            for file in files_under(&root) {
                let relative = file.strip_prefix(&root).unwrap().to_str().unwrap();
                let executable = fs::metadata(&file).unwrap().permissions().mode() & 0o111 != 0;
                writeln!(
                    table,
                    "    ScaffoldFile {{ language: {name:?}, part: Part::{part}, path: {relative:?}, \
                     executable: {executable}, bytes: include_bytes!({:?}) }},",
                    fs::canonicalize(&file).unwrap()
                )
                .unwrap();
            }
        }
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("scaffolds.rs");
    fs::write(out, table).expect("writing scaffolds.rs");
}

/// Regular files under `dir`, sorted, skipping build outputs and symbolic
/// links (the Rust SDK's `wit` link is replaced by the WIT itself).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    let mut entries: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let metadata = fs::symlink_metadata(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        if metadata.is_dir() && !SKIPPED.contains(&name) {
            files.extend(files_under(&path));
        } else if metadata.is_file() {
            files.push(path);
        }
    }
    files
}
