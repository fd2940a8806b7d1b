//! The pause image of the node: `tests/fixtures/node/pause.c` compiled
//! static and packed by umoci into an OCI image archive, as containerd's
//! `ctr images import` takes it. No registry is reachable here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::binaries::NodeBinaries;
use crate::guests::repo_root;

/// The name containerd knows the pause image by (its `sandbox_image`).
pub(crate) const PAUSE_IMAGE: &str = "localhost/sous-e2e/pause:1";

/// Builds the pause image archive in `dir` and answers its path.
pub(crate) fn build(binaries: &NodeBinaries, dir: &Path) -> anyhow::Result<PathBuf> {
    let work = dir.join("pause");
    let layout = work.join("layout");
    let image = format!("{}:1", layout.display());
    let bundle = work.join("bundle");
    std::fs::create_dir_all(&work)?;
    let program = work.join("pause");
    run(Command::new(&binaries.cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&program)
        .arg(repo_root().join("tests/fixtures/node/pause.c")))?;
    let umoci = |args: &[&str]| run(Command::new(&binaries.umoci).args(args));
    umoci(&["init", "--layout", &layout.to_string_lossy()])?;
    umoci(&["new", "--image", &image])?;
    umoci(&[
        "unpack",
        "--rootless",
        "--image",
        &image,
        &bundle.to_string_lossy(),
    ])?;
    std::fs::copy(&program, bundle.join("rootfs/pause"))?;
    umoci(&["repack", "--image", &image, &bundle.to_string_lossy()])?;
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/pause",
        "--config.user",
        "65535:65535",
        "--os",
        "linux",
        "--architecture",
        "amd64",
    ])?;
    umoci(&["gc", "--layout", &layout.to_string_lossy()])?;
    name_image(&layout.join("index.json"))?;
    let archive = work.join("pause.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg("."))?;
    Ok(archive)
}

/// Names the layout's image [`PAUSE_IMAGE`] in its index, as `ctr images
/// import` reads it.
fn name_image(index: &Path) -> anyhow::Result<()> {
    let mut index_json: serde_json::Value = serde_json::from_slice(&std::fs::read(index)?)?;
    let manifest = index_json["manifests"]
        .get_mut(0)
        .context("umoci wrote no manifest")?;
    manifest["annotations"]["io.containerd.image.name"] = PAUSE_IMAGE.into();
    std::fs::write(index, serde_json::to_vec(&index_json)?)?;
    Ok(())
}

/// Runs `command`, failing with its output when it fails.
pub(crate) fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
