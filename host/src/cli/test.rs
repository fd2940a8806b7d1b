//! `sous test`: golden cases rendered and compared with their expected output.
//!
//! A suite is a directory with a `sous.yaml` naming the module; its cases are
//! the directories under `tests/` (or `cases:`), each holding `parent.yaml`,
//! optionally `observed.yaml`, `related.yaml`, `config.yaml`, `desired.yaml`
//! and `requested.yaml` (what related requests may resolve to), and the
//! expected outcome in `expected.yaml`.
//!
//! A suite's `policy:` (a file as in `policies/`) or `allowKinds:` replaces
//! the command line's policy for that suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use similar::TextDiff;

use super::{CacheArgs, LimitArgs, plan, policy};
use crate::crd::{ChildSpec, Mode};
use crate::inputs::{self, InputError};
use crate::policy::Policy;
use crate::render;
use crate::runtime::{LoadedModule, Runtime};
use crate::tenancy::confine;
use crate::validate::TypeRef;

const SUITE_FILE: &str = "sous.yaml";
const EXPECTED_FILE: &str = "expected.yaml";

/// Arguments of `sous test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A suite directory (with `sous.yaml`), or a directory searched for suites.
    pub dir: PathBuf,
    /// Write each case's actual outcome to its `expected.yaml` instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Call limits and answer rules.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Compiled-module cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// `sous.yaml`: how to run a suite.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuiteFile {
    /// The module, relative to the suite directory.
    module: PathBuf,
    /// The reconciler name the guest sees [default: the directory's name].
    reconciler: Option<String>,
    /// The directory of cases, relative to the suite [default: `tests`].
    #[serde(default = "default_cases")]
    cases: PathBuf,
    /// Kinds the guest may produce, as apiVersion/Kind.
    #[serde(default)]
    allow_kinds: Vec<String>,
    /// A policy file as in `policies/`, relative to the suite directory;
    /// excludes `allowKinds`.
    policy: Option<PathBuf>,
    /// Check answers as the host checks a namespaced Reconciler's (as
    /// `--namespaced` does for every suite).
    #[serde(default)]
    namespaced: bool,
    /// `Decorator`: a status the guest answers is recorded as ignored
    /// (`statusIgnored: true`), as the host ignores it.
    #[serde(default)]
    mode: Mode,
    /// The child kinds' rules, as in `spec.children` (update strategy,
    /// delete policy), for the plan.
    #[serde(default)]
    children: Vec<ChildSpec>,
    /// Record in each case's outcome the writes the host would make
    /// (`plan:`), the case's observed children taken as its own.
    #[serde(default)]
    plan: bool,
}

fn default_cases() -> PathBuf {
    PathBuf::from("tests")
}

/// Counts of one run.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

/// Runs `sous test`; succeeds only when every case passes.
pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    let suites = find_suites(&args.dir)?;
    if suites.is_empty() {
        bail!(
            "`{}`: no `{SUITE_FILE}` found in it or below it",
            args.dir.display()
        );
    }
    let policy = args.limits.policy()?;
    let runtime = args.cache.runtime(&policy.limits)?;
    let mut tally = Tally::default();
    for suite in &suites {
        run_suite(&runtime, suite, &policy, args, &mut tally);
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 {
        bail!(
            "{} of {} cases failed",
            tally.failed,
            tally.passed + tally.failed
        );
    }
    Ok(())
}

fn find_suites(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join(SUITE_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut suites = Vec::new();
    for entry in read_dir_sorted(dir)? {
        if entry.is_dir() && entry.file_name().is_some_and(|name| name != "target") {
            suites.extend(find_suites(&entry)?);
        }
    }
    Ok(suites)
}

fn read_dir_sorted(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("`{}`: cannot read the directory", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

/// A suite ready to run: its module loaded, its policy read.
struct Suite {
    name: String,
    module: Arc<LoadedModule>,
    policy: Policy,
    cases: Vec<PathBuf>,
    mode: Mode,
    /// The rules of the plan, when the suite records one.
    plan: Option<Vec<ChildSpec>>,
}

fn run_suite(runtime: &Runtime, dir: &Path, policy: &Policy, args: &TestArgs, tally: &mut Tally) {
    let (update, namespaced) = (args.update, args.limits.namespaced);
    let label = dir.display().to_string();
    match load_suite(runtime, dir, policy, namespaced) {
        Ok(suite) => {
            for case in &suite.cases {
                let case_name = case
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let label = format!("{}/{case_name}", suite.name);
                match run_case(&suite, case, update) {
                    Ok(None) if update => {
                        println!("wrote {label}/{EXPECTED_FILE}");
                        tally.passed += 1;
                    }
                    Ok(None) => {
                        println!("ok    {label}");
                        tally.passed += 1;
                    }
                    Ok(Some(diff)) => {
                        println!(
                            "FAIL  {label}: the outcome differs from {EXPECTED_FILE} (- expected, + actual)\n{diff}"
                        );
                        tally.failed += 1;
                    }
                    Err(error) => {
                        println!("FAIL  {label}: {error:#}");
                        tally.failed += 1;
                    }
                }
            }
        }
        Err(error) => {
            println!("FAIL  {label}: {error:#}");
            tally.failed += 1;
        }
    }
}

fn load_suite(
    runtime: &Runtime,
    dir: &Path,
    policy: &Policy,
    namespaced: bool,
) -> anyhow::Result<Suite> {
    let suite_path = dir.join(SUITE_FILE);
    let file: SuiteFile = serde_json::from_value(inputs::read_value(&suite_path)?)
        .map_err(|e| InputError::new(&suite_path, e.to_string()))?;
    let name = file.reconciler.unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let module_path = dir.join(&file.module);
    if !module_path.is_file() {
        bail!(
            "module `{}` does not exist; build the guest first",
            module_path.display()
        );
    }
    let bytes = inputs::read_module(&module_path)?;
    let module = runtime
        .load(&bytes)
        .map_err(|e| InputError::new(&module_path, e.to_string()))?
        .module;
    let namespaced = namespaced || file.namespaced;
    let mut policy = match (&file.policy, file.allow_kinds.is_empty()) {
        (Some(_), false) => {
            return Err(InputError::new(
                &suite_path,
                "has both `policy` and `allowKinds`; put the kinds in the policy's `allowedKinds`",
            )
            .into());
        }
        (Some(path), true) => policy::read(&dir.join(path), namespaced)?,
        (None, true) => policy.clone(),
        (None, false) => {
            let kinds = file
                .allow_kinds
                .iter()
                .map(|k| TypeRef::parse(k))
                .collect::<Result<_, _>>();
            let mut policy = policy.clone();
            policy.rules.allowed_kinds = Some(kinds.map_err(|e| InputError::new(&suite_path, e))?);
            policy
        }
    };
    if namespaced {
        confine::confine_rules(&mut policy.rules);
    }
    let cases = read_dir_sorted(&dir.join(&file.cases))?
        .into_iter()
        .filter(|case| case.join("parent.yaml").is_file())
        .collect::<Vec<_>>();
    if cases.is_empty() {
        bail!(
            "no cases (directories with a `parent.yaml`) under `{}`",
            dir.join(&file.cases).display()
        );
    }
    Ok(Suite {
        name,
        module,
        policy,
        cases,
        mode: file.mode,
        plan: file.plan.then_some(file.children),
    })
}

/// Renders one case; `Some(diff)` when it differs from the expectation.
fn run_case(suite: &Suite, case: &Path, update: bool) -> anyhow::Result<Option<String>> {
    let observed = inputs::read_case(case)?;
    let requested = inputs::read_requested(case)?;
    let outcome = render::render(
        &suite.module,
        &suite.name,
        &observed,
        &suite.policy.limits,
        &suite.policy.rules,
        &render::GivenObjects {
            objects: &requested,
            rules: &suite.policy.rules,
        },
    );
    let mut actual = render::outcome_value(&outcome);
    if let Ok(rendered) = &outcome {
        if suite.mode == Mode::Decorator && rendered.status.is_some() {
            actual["statusIgnored"] = Value::Bool(true);
        }
        if let Some(rules) = &suite.plan {
            let writes = plan::offline_plan(
                &plan::key_for(&suite.name, &observed.parent),
                &observed.parent,
                rules,
                &observed.children,
                &rendered.children,
            )?;
            actual["plan"] = serde_json::to_value(writes)?;
        }
    }
    let expected_path = case.join(EXPECTED_FILE);
    if update {
        std::fs::write(&expected_path, to_yaml(&actual))
            .with_context(|| format!("`{}`: cannot write", expected_path.display()))?;
        return Ok(None);
    }
    let expected = inputs::read_value(&expected_path)?;
    Ok((expected != actual).then(|| diff(&expected, &actual)))
}

fn to_yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).expect("JSON values serialize to YAML")
}

/// A unified diff of the two values as YAML with sorted keys.
fn diff(expected: &Value, actual: &Value) -> String {
    let (expected, actual) = (to_yaml(expected), to_yaml(actual));
    TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header(EXPECTED_FILE, "actual")
        .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_diff_shows_only_the_changed_field_with_context() {
        let expected = json!({"children": [{"kind": "Deployment", "spec": {"replicas": 3}}]});
        let actual = json!({"children": [{"kind": "Deployment", "spec": {"replicas": 2}}]});
        let diff = diff(&expected, &actual);
        assert!(
            diff.contains("-    replicas: 3\n+    replicas: 2"),
            "{diff}"
        );
        assert!(diff.contains("kind: Deployment"));
        assert!(diff.starts_with("--- expected.yaml\n+++ actual\n"));
    }
}
