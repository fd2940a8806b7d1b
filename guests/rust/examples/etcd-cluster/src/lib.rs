//! `EtcdCluster {size, version}` -> a StatefulSet of etcd members, a headless
//! peer Service (stable member DNS names) and a client Service.
//!
//! The members' `--initial-cluster` flag is derived from the size; the status
//! lists the members, how many are ready, and a phase.

use serde::Deserialize;
use sous_guest::{Error, Reconciler, Request, Response, Rollout, json, object};

/// Ports etcd listens on.
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;

/// The parent's spec.
#[derive(Deserialize)]
struct EtcdClusterSpec {
    size: u32,
    version: String,
}

impl EtcdClusterSpec {
    fn check(&self) -> Result<(), Error> {
        if !(1..=9).contains(&self.size) || self.size.is_multiple_of(2) {
            return Err(Error::invalid(format!(
                "spec.size is {}; it must be an odd number from 1 to 9 (a majority must survive a failure)",
                self.size
            )));
        }
        let numeric = self
            .version
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
        if !numeric || self.version.split('.').count() != 3 {
            return Err(Error::invalid(format!(
                "spec.version `{}` is not an etcd release like `3.5.17`",
                self.version
            )));
        }
        Ok(())
    }
}

/// The reconciler.
pub struct EtcdCluster;

impl Reconciler for EtcdCluster {
    fn reconcile(request: &Request) -> Result<Response, Error> {
        let spec: EtcdClusterSpec = request.spec()?;
        spec.check()?;
        let name = request.name();
        let namespace = request.namespace().unwrap_or("default");
        let peer_service = format!("{name}-peer");
        let members: Vec<String> = (0..spec.size).map(|i| format!("{name}-{i}")).collect();
        let labels = json!({
            "app.kubernetes.io/name": "etcd",
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "sous",
        });
        let selector =
            json!({ "app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": name });

        let peer_url = |member: &str, port: u16| {
            format!("http://{member}.{peer_service}.{namespace}.svc:{port}")
        };
        let initial_cluster = members
            .iter()
            .map(|member| format!("{member}={}", peer_url(member, PEER_PORT)))
            .collect::<Vec<_>>()
            .join(",");
        let command = json!([
            "etcd",
            "--name=$(POD_NAME)",
            "--data-dir=/var/lib/etcd",
            format!(
                "--initial-advertise-peer-urls={}",
                peer_url("$(POD_NAME)", PEER_PORT)
            ),
            format!("--listen-peer-urls=http://0.0.0.0:{PEER_PORT}"),
            format!("--listen-client-urls=http://0.0.0.0:{CLIENT_PORT}"),
            format!(
                "--advertise-client-urls={}",
                peer_url("$(POD_NAME)", CLIENT_PORT)
            ),
            format!("--initial-cluster={initial_cluster}"),
            "--initial-cluster-state=new",
            format!("--initial-cluster-token={name}"),
        ]);

        let stateful_set = object("apps/v1", "StatefulSet", name)
            .labels_from(&labels)
            .spec(json!({
                "replicas": spec.size,
                "serviceName": peer_service,
                "podManagementPolicy": "Parallel",
                "selector": { "matchLabels": selector },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "containers": [{
                            "name": "etcd",
                            "image": format!("quay.io/coreos/etcd:v{}", spec.version),
                            "command": command,
                            "env": [{
                                "name": "POD_NAME",
                                "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } },
                            }],
                            "ports": [
                                { "name": "client", "containerPort": CLIENT_PORT },
                                { "name": "peer", "containerPort": PEER_PORT },
                            ],
                            "volumeMounts": [{ "name": "data", "mountPath": "/var/lib/etcd" }],
                        }],
                        "volumes": [{ "name": "data", "emptyDir": {} }],
                    },
                },
            }));
        let ports = json!([
            { "name": "client", "port": CLIENT_PORT, "targetPort": "client" },
            { "name": "peer", "port": PEER_PORT, "targetPort": "peer" },
        ]);
        let peer = object("v1", "Service", &peer_service)
            .labels_from(&labels)
            .spec(json!({
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": selector,
                "ports": ports,
            }));
        let client_service = format!("{name}-client");
        let client = object("v1", "Service", &client_service)
            .labels_from(&labels)
            .spec(json!({
                "selector": selector,
                "ports": [{ "name": "client", "port": CLIENT_PORT, "targetPort": "client" }],
            }));

        let rollout = Rollout::of(request.child("StatefulSet", name), u64::from(spec.size));
        Ok(Response::new()
            .child(stateful_set)
            .child(peer)
            .child(client)
            .status(json!({
                "members": members,
                "readyMembers": rollout.ready,
                "clientEndpoint": format!("http://{client_service}.{namespace}.svc:{CLIENT_PORT}"),
                "phase": rollout.phase,
            })))
    }
}

#[cfg(target_family = "wasm")]
sous_guest::export!(EtcdCluster);
