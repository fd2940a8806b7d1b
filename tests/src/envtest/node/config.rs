//! The configuration files of the node's programs: containerd's (CRI plugin
//! included), the CNI network's and the kubelet's, each written into the
//! node's directory so that nothing of the machine's own configuration is
//! read or changed.

use std::net::IpAddr;
use std::path::Path;

use serde_json::json;

use super::pause::PAUSE_IMAGE;

/// The CNI network: a bridge of its own, pods in one /24.
pub(crate) const BRIDGE: &str = "sous-e2e0";
const POD_SUBNET: &str = "10.244.0.0/24";

/// The node's files, all under one directory.
pub(crate) struct NodeFiles<'a> {
    pub(crate) dir: &'a Path,
}

impl NodeFiles<'_> {
    /// containerd's socket (also the kubelet's runtime endpoint).
    pub(crate) fn containerd_socket(&self) -> std::path::PathBuf {
        self.dir.join("containerd/containerd.sock")
    }

    /// containerd's configuration (version 2, containerd 1.6 and later).
    ///
    /// `restrict_oom_score_adj`: the machine may deny CAP_SYS_RESOURCE, and
    /// runc then fails every sandbox writing `/proc/self/oom_score_adj`.
    pub(crate) fn containerd_config(&self, cni_bin_dir: &Path) -> String {
        let dir = self.dir.join("containerd");
        format!(
            r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = self.containerd_socket().display(),
            cni_bin = cni_bin_dir.display(),
            cni_conf = self.dir.join("cni").display(),
        )
    }

    /// The CNI network: pods on a bridge whose gateway is this machine, so
    /// they reach host services (the API server) on the machine's address.
    pub(crate) fn cni_config(&self) -> String {
        let network = json!({
            "cniVersion": "0.4.0",
            "name": "sous-e2e",
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": self.dir.join("cni-ipam"),
                },
            }],
        });
        serde_json::to_string_pretty(&network).expect("JSON of a JSON value")
    }

    /// The kubelet's configuration.
    ///
    /// - `failCgroupV1: false`: the machine may have only cgroup v1.
    /// - `cgroupDriver: cgroupfs`: containerd 1.6 cannot tell the kubelet
    ///   its driver, and there is no systemd.
    /// - Authentication and authorization are open: the API server reaches
    ///   the kubelet (logs, exec) without client certificates.
    /// - Eviction only near exhaustion: a test machine's disk is often more
    ///   than 85 % full, and evicting the host pod would fail the trials.
    pub(crate) fn kubelet_config(&self, address: IpAddr, healthz_port: u16) -> String {
        let config = json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": false,
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": format!("unix://{}", self.containerd_socket().display()),
            "address": address,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            "readOnlyPort": 0,
            "authentication": {
                "anonymous": {"enabled": true},
                "webhook": {"enabled": false},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "failSwapOn": false,
            "evictionHard": {
                "memory.available": "50Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "fileCheckFrequency": "2s",
            "nodeStatusUpdateFrequency": "2s",
            "serializeImagePulls": false,
        });
        serde_json::to_string_pretty(&config).expect("JSON of a JSON value")
    }
}
