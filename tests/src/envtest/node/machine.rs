//! What a node changes on the machine beyond its own directory, and how the
//! harness puts it back: the kernel settings the kubelet rewrites at start,
//! the processes of containers, the mounts and the network namespaces of
//! pods.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kernel settings the kubelet sets at start (unless
/// `protectKernelDefaults`), with their `/proc/sys` paths.
const KERNEL_SETTINGS: &[&str] = &[
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
];

/// Where the kubelet puts the cgroups of pods (cgroupfs driver, cgroup v1:
/// one tree per controller; the `pids` tree lists every process).
const POD_CGROUPS: &str = "/sys/fs/cgroup/pids/kubepods";

/// The cgroup v1 hierarchies, each with a `kubepods` tree of the kubelet's.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where containerd's CRI plugin keeps the network namespaces of pods.
const NETNS_DIR: &str = "/var/run/netns";

/// The machine as it was before the node started.
pub(crate) struct MachineState {
    kernel_settings: Vec<(PathBuf, String)>,
    network_namespaces: Vec<String>,
}

impl MachineState {
    /// Records the kernel settings and the network namespaces there are now.
    pub(crate) fn record() -> Self {
        let kernel_settings = KERNEL_SETTINGS
            .iter()
            .map(|setting| Path::new("/proc/sys").join(setting))
            .filter_map(|path| {
                let value = std::fs::read_to_string(&path).ok()?;
                Some((path, value.trim().to_owned()))
            })
            .collect();
        Self {
            kernel_settings,
            network_namespaces: network_namespaces(),
        }
    }

    /// Puts the recorded kernel settings back and removes the network
    /// namespaces made since; each failure is printed, none stops the rest.
    pub(crate) fn restore(&self) {
        for (path, value) in &self.kernel_settings {
            if let Err(error) = std::fs::write(path, value) {
                eprintln!("e2e node: restoring {}: {error}", path.display());
            }
        }
        for name in network_namespaces() {
            if !self.network_namespaces.contains(&name) {
                let path = Path::new(NETNS_DIR).join(&name);
                unmount(&path);
                if let Err(error) = std::fs::remove_file(&path) {
                    eprintln!("e2e node: removing {}: {error}", path.display());
                }
            }
        }
    }
}

fn network_namespaces() -> Vec<String> {
    std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every process in the cgroup of the pod with `uid` (its containers and its
/// sandbox), found in the kubelet's cgroup tree.
pub(crate) fn pod_processes(uid: &str) -> Vec<u32> {
    let pod = format!("pod{uid}");
    let mut processes = Vec::new();
    for dir in cgroups_under(Path::new(POD_CGROUPS)) {
        if dir
            .components()
            .any(|part| part.as_os_str() == pod.as_str())
        {
            processes.extend(cgroup_processes(&dir));
        }
    }
    processes
}

/// Kills every process left in a pod's cgroup (SIGKILL), until none is
/// left or 10 s pass. For the end of a node, after the kubelet is gone.
pub(crate) fn kill_pod_processes() {
    let started = Instant::now();
    loop {
        let left: Vec<u32> = cgroups_under(Path::new(POD_CGROUPS))
            .iter()
            .flat_map(|dir| cgroup_processes(dir))
            .collect();
        if left.is_empty() {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            eprintln!("e2e node: processes of pods still alive after SIGKILL: {left:?}");
            return;
        }
        for pid in left {
            signal(pid, "KILL");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the kubelet's `kubepods` cgroups (empty once no process of a pod
/// is left), the deepest first, in every hierarchy.
pub(crate) fn remove_pod_cgroups() {
    for hierarchy in std::fs::read_dir(CGROUP_ROOT)
        .into_iter()
        .flatten()
        .flatten()
    {
        let mut dirs = cgroups_under(&hierarchy.path().join("kubepods"));
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        for dir in dirs {
            // Already gone, or another hierarchy's view of the same one.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Deletes the network link `name` (the CNI bridge), if there.
pub(crate) fn delete_link(name: &str) {
    // Not there is fine.
    let _ = std::process::Command::new("ip")
        .args(["link", "delete", name])
        .output();
}

/// Kills the processes whose command line mentions `needle` (containerd's
/// shims name the socket of the containerd that started them).
pub(crate) fn kill_processes_mentioning(needle: &str) {
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if command_line(pid).contains(needle) {
            signal(pid, "KILL");
        }
    }
}

/// A process's command line, its arguments joined by spaces.
pub(crate) fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// Unmounts (lazily) every mount under `dir`, the deepest first: the
/// kubelet's volumes and containerd's root filesystems.
pub(crate) fn unmount_under(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in mounts {
        unmount(&point);
    }
}

/// Sends `signal` (a name such as `STOP`) to process `pid`.
pub(crate) fn signal(pid: u32, signal: &str) {
    // The process may be gone already: nothing to do then.
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .output();
}

fn unmount(path: &Path) {
    // Not mounted (any more) is fine.
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(path)
        .output();
}

/// `dir` and every directory below it.
fn cgroups_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(entry.path());
            }
        }
        found.push(dir);
    }
    found
}

fn cgroup_processes(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}
