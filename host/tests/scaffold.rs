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

    // The README's third command, as written there, with `--dry-run`.
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let push = push_command(&readme);
    let pushed = run(Command::new("sh")
        .arg("-c")
        .arg(format!("\"$SOUS\" {push} --dry-run"))
        .env("SOUS", env!("CARGO_BIN_EXE_sous"))
        .current_dir(&project));
    let manifests = String::from_utf8_lossy(&pushed.stdout);
    assert!(
        manifests.contains("kind: Reconciler") && manifests.contains(&format!("name: {name}")),
        "{manifests}"
    );
}

/// The `sous push` command of a README, its continuation lines joined and
/// its trailing comment dropped, without the leading `sous`.
fn push_command(readme: &str) -> String {
    let start = readme
        .find("sous push --")
        .unwrap_or_else(|| panic!("no `sous push` command in:\n{readme}"));
    let mut command = String::new();
    for line in readme[start..].lines() {
        let line = line.split(" #").next().unwrap_or_default().trim_end();
        match line.strip_suffix('\\') {
            Some(continued) => command.push_str(continued),
            None => {
                command.push_str(line);
                break;
            }
        }
    }
    command.trim_start_matches("sous ").to_string()
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
