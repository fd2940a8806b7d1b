//! `sous new` as a guest author runs it: for every language, the scaffolded
//! project builds with its own `./build` (which installs the language's
//! toolchain when missing) and passes its golden case with `sous test .`.

use std::path::Path;
use std::process::{Command, Output};

use sous_tests::guests;

/// The languages tested below; `sous new` must offer exactly these.
const LANGUAGES: &[&str] = &["c", "go", "js", "python", "rust"];

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("running a command");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn sous(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sous"));
    command.current_dir(dir);
    command
}

fn scaffold_builds_and_passes_its_golden_case(language: &str) {
    let workspace = tempfile::tempdir().unwrap();
    let name = format!("demo-{language}");
    let created = run(sous(workspace.path()).args(["new", "--lang", language, &name]));
    let said = String::from_utf8_lossy(&created.stdout);
    assert!(
        said.contains("./build") && said.contains("sous test ."),
        "{said}"
    );

    let project = workspace.path().join(&name);
    let mut build = Command::new(project.join("build"));
    if language == "rust" {
        // Share the Rust guests' dependencies instead of building them again.
        build.env(
            "CARGO_TARGET_DIR",
            guests::repo_root().join("guests/rust/target"),
        );
    }
    run(&mut build);
    assert!(project.join(format!("target/{name}.wasm")).is_file());

    let tested = run(sous(&project).args(["test", "."]));
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn new_offers_exactly_the_tested_languages() {
    let help = run(Command::new(env!("CARGO_BIN_EXE_sous")).args(["new", "--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    let offered = help
        .split("[possible values: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no possible values in:\n{help}"));
    assert_eq!(offered, LANGUAGES.join(", "));
}

/// One test per language, named after it.
macro_rules! language {
    ($($language:ident),*) => {
        $(
            #[test]
            fn $language() {
                scaffold_builds_and_passes_its_golden_case(stringify!($language));
            }
        )*
    };
}

language!(c, go, js, python, rust);
