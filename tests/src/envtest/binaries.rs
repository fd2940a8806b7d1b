//! Finds the control-plane binaries the envtest way: `$KUBEBUILDER_ASSETS`,
//! else `/usr/local/kubebuilder/bin`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the binaries are looked for when `KUBEBUILDER_ASSETS` is unset.
const DEFAULT_ASSETS: &str = "/usr/local/kubebuilder/bin";

/// The programs of a local control plane.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    /// `kube-apiserver`: required.
    pub(crate) apiserver: PathBuf,
    /// `etcd` from the same directory, else from `PATH`: required.
    pub(crate) etcd: PathBuf,
    /// `kube-controller-manager` from the same directory, when there.
    pub(crate) controller_manager: Option<PathBuf>,
}

impl Binaries {
    /// Finds the binaries, or says in one line why a control plane cannot be
    /// started here.
    pub(crate) fn find() -> Result<Self, String> {
        let dir = assets_dir();
        let apiserver = executable(dir.join("kube-apiserver")).ok_or_else(|| {
            format!(
                "no kube-apiserver in {} (set KUBEBUILDER_ASSETS to a directory holding one, \
                 or SOUS_E2E_USE_EXISTING=1 and KUBECONFIG to use a running cluster)",
                dir.display()
            )
        })?;
        let etcd = executable(dir.join("etcd"))
            .or_else(|| on_path("etcd"))
            .ok_or_else(|| {
                format!(
                    "no etcd in {} nor on PATH (Debian: `apt-get install etcd-server`)",
                    dir.display()
                )
            })?;
        Ok(Self {
            apiserver,
            etcd,
            controller_manager: executable(dir.join("kube-controller-manager")),
        })
    }
}

/// `$KUBEBUILDER_ASSETS`, else `/usr/local/kubebuilder/bin`.
pub(crate) fn assets_dir() -> PathBuf {
    std::env::var_os("KUBEBUILDER_ASSETS")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_ASSETS), PathBuf::from)
}

/// `path` when it is an executable file (following symbolic links).
pub(crate) fn executable(path: PathBuf) -> Option<PathBuf> {
    is_executable(&path).then_some(path)
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The first executable `name` in the directories of `PATH`.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| executable(dir.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_execute_permission_is_not_a_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kube-apiserver");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        assert!(!is_executable(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(is_executable(&path));
        assert!(!is_executable(dir.path()), "a directory is not a binary");
    }

    #[test]
    fn sh_is_found_on_path() {
        assert!(on_path("sh").is_some());
        assert!(on_path("surely-no-such-program-here").is_none());
    }
}
