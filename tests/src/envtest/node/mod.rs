//! A real node for the e2e tests: containerd (with its CRI plugin), the
//! kubelet and kube-scheduler, beside a control plane of the harness's own,
//! so that `helm install` runs Sous as a pod.
//!
//! Everything lives in the control plane's directory: containerd's root and
//! socket, the CNI configuration and address leases, the kubelet's root. No
//! registry is reachable, so images are OCI archives imported with `ctr`;
//! the pause image is built here from `tests/fixtures/node/pause.c`. When the
//! node stops, the kernel settings the kubelet rewrote are put back and no
//! process, mount, cgroup, network namespace or bridge of a pod is left.

mod binaries;
mod config;
mod machine;
mod pause;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::api::Api;

pub(crate) use binaries::NodeBinaries;
use config::NodeFiles;
use machine::MachineState;

use super::local::{free_ports, wait_ready};
use super::process::Process;

/// The running programs of a node; dropping it stops them and cleans up.
pub struct Node {
    // Stopped in this order by `Drop`.
    kubelet: Option<Process>,
    scheduler: Option<Process>,
    containerd: Option<Process>,
    machine: MachineState,
    dir: PathBuf,
    ctr: PathBuf,
    name: String,
    api_server: SocketAddr,
}

impl Node {
    /// Starts containerd, kube-scheduler and the kubelet with their files in
    /// `dir`, registering with the API server at `api_server` (the address
    /// pods are told) through `kubeconfig`; waits until the node is Ready and
    /// schedulable.
    pub(crate) async fn start(
        binaries: &NodeBinaries,
        dir: &Path,
        kubeconfig: &Path,
        api_server: SocketAddr,
        client: &kube::Client,
    ) -> anyhow::Result<Self> {
        let dir = dir.join("node");
        let files = NodeFiles { dir: &dir };
        for sub in ["containerd", "cni", "cni-ipam", "kubelet"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(
            dir.join("containerd.toml"),
            files.containerd_config(&binaries.cni_dir),
        )?;
        std::fs::write(dir.join("cni/10-sous-e2e.conflist"), files.cni_config())?;
        let [scheduler_port, kubelet_healthz] = free_ports(super::local::LOOPBACK)?;
        std::fs::write(
            dir.join("kubelet.json"),
            files.kubelet_config(api_server.ip(), kubelet_healthz),
        )?;
        let pause = pause::build(binaries, &dir)?;

        let mut node = Self {
            kubelet: None,
            scheduler: None,
            containerd: None,
            machine: MachineState::record(),
            ctr: binaries.ctr.clone(),
            name: host_name()?,
            api_server,
            dir: dir.clone(),
        };
        let mut containerd = Process::spawn(
            "containerd",
            &binaries.containerd,
            &[format!(
                "--config={}",
                dir.join("containerd.toml").display()
            )],
            dir.join("containerd.log"),
        )?;
        wait_ready(&mut containerd, "serving its socket", || async {
            node.ctr(&["version"])
                .map(drop)
                .map_err(|error| error.to_string())
        })
        .await?;
        node.containerd = Some(containerd);
        node.import_image(&pause, pause::PAUSE_IMAGE)?;

        node.scheduler = Some(Process::spawn(
            "kube-scheduler",
            &binaries.scheduler,
            &[
                format!("--kubeconfig={}", kubeconfig.display()),
                "--leader-elect=false".to_owned(),
                "--bind-address=127.0.0.1".to_owned(),
                format!("--secure-port={scheduler_port}"),
            ],
            dir.join("kube-scheduler.log"),
        )?);
        let mut kubelet = Process::spawn(
            "kubelet",
            &binaries.kubelet,
            &[
                format!("--config={}", dir.join("kubelet.json").display()),
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--root-dir={}", dir.join("kubelet").display()),
                format!("--node-ip={}", api_server.ip()),
                format!("--hostname-override={}", node.name),
            ],
            dir.join("kubelet.log"),
        )?;
        let nodes: Api<NodeObject> = Api::all(client.clone());
        wait_ready(&mut kubelet, "Ready and schedulable", || async {
            schedulable(&nodes, &node.name).await
        })
        .await?;
        node.kubelet = Some(kubelet);
        Ok(node)
    }

    /// The node's name (the machine's host name, which resolves: the API
    /// server reaches the kubelet by it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API server's address as pods must be told it: there is no
    /// kube-proxy, so the `kubernetes` Service does not route.
    pub fn api_server(&self) -> SocketAddr {
        self.api_server
    }

    /// Imports the OCI image archive at `archive` into the node's containerd
    /// as `reference` (as a pod names it: `sous:e2e` is
    /// `docker.io/library/sous:e2e`), so pods run it without a registry.
    pub fn import_image(&self, archive: &Path, reference: &str) -> anyhow::Result<()> {
        let output = self.ctr(&["images", "import", "--digests", &archive.to_string_lossy()])?;
        let imported = output
            .lines()
            .find_map(|line| line.strip_prefix("unpacking "))
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("`ctr images import` named no image: {output}"))?
            .to_owned();
        let reference = normalize(reference);
        if imported != reference {
            self.ctr(&["images", "tag", "--force", &imported, &reference])?;
        }
        // A name that is not normalized confuses the CRI plugin, which looks
        // images up by normalized names.
        if normalize(&imported) != imported {
            self.ctr(&["images", "rm", &imported])?;
        }
        Ok(())
    }

    /// The host process id of the process of the pod with `uid` whose
    /// command line starts with `program` (a container's entrypoint).
    pub fn pod_process(&self, uid: &str, program: &str) -> Option<u32> {
        machine::pod_processes(uid)
            .into_iter()
            .find(|pid| machine::command_line(*pid).starts_with(program))
    }

    /// Sends `signal` (a name such as `STOP` or `CONT`) to process `pid`.
    pub fn signal(&self, pid: u32, signal: &str) {
        machine::signal(pid, signal);
    }

    /// Runs `ctr` on the node's containerd, in the CRI plugin's namespace.
    fn ctr(&self, args: &[&str]) -> anyhow::Result<String> {
        let files = NodeFiles { dir: &self.dir };
        pause::run(
            Command::new(&self.ctr)
                .arg("--address")
                .arg(files.containerd_socket())
                .args(["--namespace", "k8s.io"])
                .args(args),
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.kubelet.take());
        machine::kill_pod_processes();
        drop(self.scheduler.take());
        drop(self.containerd.take());
        machine::kill_processes_mentioning(&self.dir.join("containerd").to_string_lossy());
        machine::unmount_under(&self.dir);
        machine::remove_pod_cgroups();
        machine::delete_link(config::BRIDGE);
        self.machine.restore();
    }
}

/// `Ok` when the node is Ready and carries no taint that keeps pods off.
async fn schedulable(nodes: &Api<NodeObject>, name: &str) -> Result<(), String> {
    let node = nodes
        .get_opt(name)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("no Node {name} registered yet"))?;
    let ready = node
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True");
    if !ready {
        return Err(format!("Node {name} is not Ready yet"));
    }
    let taints: Vec<String> = node
        .spec
        .and_then(|spec| spec.taints)
        .unwrap_or_default()
        .into_iter()
        .filter(|taint| taint.effect == "NoSchedule" || taint.effect == "NoExecute")
        .map(|taint| taint.key)
        .collect();
    if taints.is_empty() {
        Ok(())
    } else {
        Err(format!("Node {name} is tainted: {taints:?}"))
    }
}

/// The machine's host name, lower-cased as node names are.
fn host_name() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name")?
        .trim()
        .to_lowercase();
    if name.is_empty() {
        bail!("the machine has no host name");
    }
    Ok(name)
}

/// The machine's own address: the source of its default route (no packet
/// is sent). Pods on the node's bridge reach it through their gateway.
pub(crate) fn machine_address() -> anyhow::Result<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket
        .connect("1.1.1.1:53")
        .context("finding the machine's address: no route out of it")?;
    Ok(socket.local_addr()?.ip())
}

/// An image reference as containerd's CRI plugin stores it: `sous:e2e` is
/// `docker.io/library/sous:e2e`, `me/sous:1` is `docker.io/me/sous:1`.
fn normalize(reference: &str) -> String {
    let (first, rest) = reference.split_once('/').unwrap_or(("", reference));
    let has_domain = first.contains('.') || first.contains(':') || first == "localhost";
    match (first.is_empty(), has_domain) {
        (true, _) => format!("docker.io/library/{rest}"),
        (false, true) => reference.to_owned(),
        (false, false) => format!("docker.io/{reference}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalized_as_cri_stores_them() {
        assert_eq!(normalize("sous:e2e"), "docker.io/library/sous:e2e");
        assert_eq!(normalize("me/sous:1"), "docker.io/me/sous:1");
        assert_eq!(
            normalize("localhost/sous-e2e/pause:1"),
            "localhost/sous-e2e/pause:1"
        );
        assert_eq!(
            normalize("ghcr.io/sous-dev/sous:0.1"),
            "ghcr.io/sous-dev/sous:0.1"
        );
        assert_eq!(normalize("registry:5000/sous:1"), "registry:5000/sous:1");
    }
}
