//! Finds what a node needs: kubelet and kube-scheduler beside kube-apiserver
//! (the envtest directory), containerd, `ctr`, runc and the CNI plugins from
//! the distribution (Debian: `containerd`, `runc`,
//! `containernetworking-plugins`), umoci and a C compiler for the pause
//! image, and root.

use std::path::{Path, PathBuf};

use crate::envtest::binaries::{assets_dir, executable, on_path};

/// Where the CNI plugins are looked for, in order.
const CNI_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];

/// The programs of a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeBinaries {
    pub(crate) kubelet: PathBuf,
    pub(crate) scheduler: PathBuf,
    pub(crate) containerd: PathBuf,
    pub(crate) ctr: PathBuf,
    /// The directory of the CNI plugins (`bridge`, `host-local`, `loopback`).
    pub(crate) cni_dir: PathBuf,
    pub(crate) umoci: PathBuf,
    pub(crate) cc: PathBuf,
}

impl NodeBinaries {
    /// Finds them, or says in one line why no node can be started here.
    pub(crate) fn find() -> Result<Self, String> {
        let assets = assets_dir();
        let from_assets = |name: &str| {
            executable(assets.join(name))
                .ok_or_else(|| format!("no {name} in {}", assets.display()))
        };
        let from_path = |name: &str, package: &str| {
            on_path(name).ok_or_else(|| format!("no {name} on PATH (Debian: `{package}`)"))
        };
        let kubelet = from_assets("kubelet")?;
        let scheduler = from_assets("kube-scheduler")?;
        let containerd = from_path("containerd", "apt-get install containerd")?;
        let ctr = from_path("ctr", "apt-get install containerd")?;
        from_path("runc", "apt-get install runc")?;
        let cni_dir = CNI_DIRS
            .iter()
            .map(Path::new)
            .find(|dir| {
                ["bridge", "host-local", "loopback"]
                    .iter()
                    .all(|p| executable(dir.join(p)).is_some())
            })
            .ok_or_else(|| {
                format!(
                    "no CNI plugins bridge, host-local and loopback in {} \
                     (Debian: `apt-get install containernetworking-plugins`)",
                    CNI_DIRS.join(" or ")
                )
            })?
            .to_path_buf();
        let umoci = from_path("umoci", "apt-get install umoci")?;
        let cc = from_path("cc", "apt-get install gcc libc6-dev")?;
        if !is_root() {
            return Err("a node needs root (kubelet, containerd and runc), and this is not".into());
        }
        Ok(Self {
            kubelet,
            scheduler,
            containerd,
            ctr,
            cni_dir,
            umoci,
            cc,
        })
    }
}

/// Whether this process runs as root, from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}
