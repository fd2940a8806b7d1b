//! The Helm chart `charts/sous`: where it is, and its manifests as `helm
//! template` renders them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::guests::repo_root;

/// The chart's directory.
pub fn dir() -> PathBuf {
    repo_root().join("charts/sous")
}

/// The helm binary: `$SOUS_HELM` (which `.ci/test` sets from `.ci/helm`),
/// else `helm` on `PATH`. The error says why there is none.
pub fn helm() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SOUS_HELM") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("SOUS_HELM={} is not a file", path.display()))
        };
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("helm"))
        .find(|path| path.is_file())
        .ok_or_else(|| "no helm: set SOUS_HELM or put helm on PATH (.ci/helm installs it)".into())
}

/// Renders the chart as release `sous` in `namespace` with values given as
/// `key=<JSON>` each (helm's `--set-json`, e.g. `rbac.mode="leastPrivilege"`)
/// and the CRDs, one JSON value per manifest.
pub fn render(helm: &Path, namespace: &str, sets: &[&str]) -> anyhow::Result<Vec<Value>> {
    let mut command = Command::new(helm);
    command.args(["template", "sous"]).arg(dir()).args([
        "--namespace",
        namespace,
        "--include-crds",
    ]);
    for set in sets {
        command.args(["--set-json", set]);
    }
    let output = command
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    if !output.status.success() {
        bail!(
            "helm template with {sets:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Multi-document YAML as JSON values, without empty documents.
pub fn parse(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let mut manifests = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document).context("parsing rendered YAML")?;
        if !value.is_null() {
            manifests.push(value);
        }
    }
    Ok(manifests)
}
