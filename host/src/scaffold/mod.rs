//! `sous new`: a guest project in one of the SDK languages that builds, with
//! a golden case, ready for `sous test` and `sous push`.
//!
//! The files come from the repository, embedded at build time (see
//! `build.rs`): `guests/<lang>/template/` becomes the project's root and
//! `guests/<lang>/sdk/` its `sdk/`, beside a copy of the WIT contract. In a
//! template, files ending in `.tmpl` lose that suffix and have `__NAME__`
//! replaced by the project's name and `__IDENT__` by the same name with `_`
//! for `-` (for languages whose identifiers cannot hold `-`).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The WIT contract every scaffold carries.
const WIT: &str = include_str!("../../../wit/reconciler.wit");
/// The suffix of template files whose placeholders are replaced.
const TEMPLATE_SUFFIX: &str = ".tmpl";
/// The longest project name: a DNS-1123 label, like the reconciler it becomes.
const NAME_MAX: usize = 63;

/// Where a scaffold file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `guests/<lang>/template/`: the project's own files.
    Template,
    /// `guests/<lang>/sdk/`: the SDK, copied into `sdk/`.
    Sdk,
}

/// One embedded file of a language's scaffold.
#[derive(Debug)]
struct ScaffoldFile {
    language: &'static str,
    part: Part,
    path: &'static str,
    executable: bool,
    bytes: &'static [u8],
}

/// Every language's template and SDK files, in path order.
static FILES: &[ScaffoldFile] = include!(concat!(env!("OUT_DIR"), "/scaffolds.rs"));

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// No language of that name has a template.
    #[error("no template for language `{language}`; choose one of: {}", languages().join(", "))]
    UnknownLanguage {
        /// The language asked for.
        language: String,
    },
    /// The name cannot name a reconciler.
    #[error(
        "`{name}` cannot name a reconciler: use lowercase letters, digits and `-`, starting with a \
         letter, at most {NAME_MAX} characters (e.g. `my-operator`)"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The project directory exists and holds something.
    #[error("`{}` already exists and is not empty; choose another name or `--dir`", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// Writing a file failed.
    #[error("`{}`: cannot write it", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The languages `sous new` can scaffold, sorted.
pub fn languages() -> Vec<&'static str> {
    let mut languages: Vec<&str> = FILES.iter().map(|file| file.language).collect();
    languages.dedup();
    languages
}

/// Creates the project `name` in `language` under `dir` (created if missing,
/// refused if not empty) and returns the files written, relative to `dir`.
pub fn create(language: &str, name: &str, dir: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    if !languages().contains(&language) {
        return Err(ScaffoldError::UnknownLanguage {
            language: language.to_string(),
        });
    }
    if !is_project_name(name) {
        return Err(ScaffoldError::InvalidName {
            name: name.to_string(),
        });
    }
    if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::NotEmpty {
            path: dir.to_path_buf(),
        });
    }
    let mut written = Vec::new();
    for file in FILES.iter().filter(|file| file.language == language) {
        let (path, bytes) = match file.part {
            Part::Sdk => (Path::new("sdk").join(file.path), file.bytes.to_vec()),
            Part::Template => match file.path.strip_suffix(TEMPLATE_SUFFIX) {
                Some(path) => (PathBuf::from(path), fill(file.bytes, name)),
                None => (PathBuf::from(file.path), file.bytes.to_vec()),
            },
        };
        write(dir, &path, &bytes, file.executable)?;
        written.push(path);
    }
    let wit = wit_path(language);
    write(dir, &wit, WIT.as_bytes(), false)?;
    written.push(wit);
    Ok(written)
}

/// Where a language's scaffold keeps the WIT: the Rust SDK's bindings macro
/// reads it from `sdk/wit/`; every other language's build takes `wit/`.
fn wit_path(language: &str) -> PathBuf {
    match language {
        "rust" => PathBuf::from("sdk/wit/reconciler.wit"),
        _ => PathBuf::from("wit/reconciler.wit"),
    }
}

/// A template's text with its placeholders replaced.
fn fill(template: &[u8], name: &str) -> Vec<u8> {
    String::from_utf8_lossy(template)
        .replace("__NAME__", name)
        .replace("__IDENT__", &name.replace('-', "_"))
        .into_bytes()
}

fn is_project_name(name: &str) -> bool {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    name.len() <= NAME_MAX
        && name.chars().all(valid_char)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
}

fn write(dir: &Path, path: &Path, bytes: &[u8], executable: bool) -> Result<(), ScaffoldError> {
    let target = dir.join(path);
    let failed = |source| ScaffoldError::Write {
        path: target.clone(),
        source,
    };
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(failed)?;
    }
    fs::write(&target, bytes).map_err(failed)?;
    if executable {
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_is_a_language_and_every_language_has_a_build_script_and_a_golden_case() {
        assert!(languages().contains(&"rust"), "{:?}", languages());
        for language in languages() {
            let template = |path: &str| {
                FILES.iter().any(|file| {
                    file.language == language && file.part == Part::Template && file.path == path
                })
            };
            assert!(template("build.tmpl"), "{language} has no build script");
            assert!(template("sous.yaml.tmpl"), "{language} has no sous.yaml");
            assert!(template("README.md.tmpl"), "{language} has no README");
            assert!(
                template("tests/first-reconcile/expected.yaml.tmpl"),
                "{language} has no golden case"
            );
        }
    }

    #[test]
    fn a_project_is_written_with_its_name_its_sdk_and_the_wit() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("my-op");
        let written = create("rust", "my-op", &project).unwrap();
        assert!(written.contains(&PathBuf::from("sdk/wit/reconciler.wit")));
        assert!(written.contains(&PathBuf::from("sdk/src/lib.rs")));
        let manifest = fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-op\""), "{manifest}");
        let build = fs::read_to_string(project.join("build")).unwrap();
        assert!(build.contains("my_op.wasm") && build.contains("target/my-op.wasm"));
        let mode = fs::metadata(project.join("build"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "the build script is executable");
        assert!(
            !written
                .iter()
                .any(|path| path.to_string_lossy().ends_with(".tmpl"))
        );
    }

    #[test]
    fn a_bad_name_an_unknown_language_and_a_used_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["My-Op", "1op", "op-", "op_x", ""] {
            let error = create("rust", name, &dir.path().join("x")).unwrap_err();
            assert!(matches!(error, ScaffoldError::InvalidName { .. }), "{name}");
        }
        let error = create("cobol", "op", &dir.path().join("x")).unwrap_err();
        assert!(error.to_string().contains("choose one of: "), "{error}");
        fs::write(dir.path().join("file"), "x").unwrap();
        let error = create("rust", "op", dir.path()).unwrap_err();
        assert!(matches!(error, ScaffoldError::NotEmpty { .. }), "{error}");
        assert!(
            !dir.path().join("Cargo.toml").exists(),
            "nothing was written"
        );
    }
}
