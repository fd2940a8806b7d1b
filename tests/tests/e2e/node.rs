//! The host as users run it: the chart installed with `helm`, Sous running as
//! a pod of a real node (kubelet, containerd, runc) in a namespace that
//! enforces the restricted Pod Security Standard. The values set are only the
//! image and the API server's address (no kube-proxy routes the `kubernetes`
//! Service here), plus what each step changes: replicas, the image tag, the
//! RBAC mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};
use sous_tests::envtest::node::Node;
use sous_tests::envtest::wait_for;
use sous_tests::guests::guest_bytes;
use sous_tests::{chart, image};

use crate::Env;
use crate::support::{CONVERGE, World, http_get, my_app, my_app_reconciler};

/// The image tag installed first, and the one an upgrade moves to (the same
/// archive imported under both).
const TAG: &str = "e2e";
const NEXT_TAG: &str = "e2e-next";

/// The chart's default Lease duration: a frozen leader is replaced after it.
const LEASE: Duration = Duration::from_secs(15);

/// The host's program in the image.
const HOST_PROGRAM: &str = "/usr/local/bin/sous";

/// The name of the hosts' Lease (`sous::operator::LEASE_NAME`).
const LEASE_NAME: &str = sous::operator::LEASE_NAME;

/// `helm install` with one replica, a MyApp reconciled by the pod, then
/// `helm upgrade` to two replicas (the new pod waits: one host reconciles),
/// to a new image tag with least-privilege RBAC (no parent lost, no write
/// refused), and `helm uninstall` (nothing of the host left, parents and
/// their children untouched).
pub async fn install_upgrade_uninstall(env: Env) -> anyhow::Result<()> {
    let Some(release) = Release::prepare(env).await? else {
        return Ok(());
    };
    let world = &release.world;
    let started = Instant::now();
    release.helm("install", &[])?;
    let pods = release
        .wait_pods("one host pod Ready", |pods| ready_count(pods) == 1)
        .await;
    println!(
        "e2e node: host pod Ready {:.1?} after `helm install`",
        started.elapsed()
    );
    let first = pod_name(&pods[0]);
    release.check_confined(&pods[0]);

    let created = Instant::now();
    world.apply(my_app("web", 2)).await;
    world
        .wait_parent("MyApp", "web", "True", Some("Reconciled"))
        .await;
    println!(
        "e2e node: MyApp reconciled by the pod in {:.1?}",
        created.elapsed()
    );
    assert_eq!(release.holder().await.as_deref(), Some(first.as_str()));
    let owners = release
        .lease()
        .await
        .and_then(|lease| lease.metadata.owner_references);
    let owner = owners
        .as_deref()
        .and_then(<[_]>::first)
        .context("the Lease has an owner")?;
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), Some(&owner.uid)),
        ("Pod", first.as_str(), pods[0].metadata.uid.as_ref()),
        "the leader's pod owns the Lease, so it goes with the release"
    );
    let metrics = release.metrics(&pods[0]).await;
    assert!(
        metrics.contains("sous_reconciles_total{reconciler=\"")
            && metrics.contains("outcome=\"success\""),
        "the pod's /metrics counts its passes:\n{metrics}"
    );

    // 1 → 2 replicas: the new pod is a candidate and reconciles nothing.
    let transitions = release.lease_transitions().await;
    release.helm("upgrade", &["replicas=2"])?;
    let pods = release
        .wait_pods("two host pods Ready", |pods| ready_count(pods) == 2)
        .await;
    let second = pods
        .iter()
        .find(|pod| pod_name(pod) != first)
        .context("a second pod")?;
    world.apply(my_app("api", 1)).await;
    world
        .wait_parent("MyApp", "api", "True", Some("Reconciled"))
        .await;
    assert_eq!(release.holder().await.as_deref(), Some(first.as_str()));
    assert_eq!(
        release.lease_transitions().await,
        transitions,
        "the Lease never changed hands"
    );
    let candidate = release.metrics(second).await;
    assert!(
        !candidate.contains("sous_reconciles_total{"),
        "the second pod reconciled while the first led:\n{candidate}"
    );

    // A new tag and least-privilege RBAC: a rolling update hands the Lease over.
    let upgraded = Instant::now();
    release.helm(
        "upgrade",
        &[
            "replicas=2",
            &format!("image.tag={}", json!(NEXT_TAG)),
            "rbac.mode=\"leastPrivilege\"",
        ],
    )?;
    let image = format!("sous:{NEXT_TAG}");
    let pods = release
        .wait_pods("two pods of the new tag Ready, the old ones gone", |pods| {
            pods.len() == 2
                && ready_count(pods) == 2
                && pods.iter().all(|pod| pod_image(pod) == image)
        })
        .await;
    let leader = release
        .wait_holder("a pod of the new tag leading", |holder| {
            pods.iter().any(|pod| pod_name(pod) == holder)
        })
        .await;
    println!(
        "e2e node: rolled to the new tag, {leader} leading, in {:.1?}",
        upgraded.elapsed()
    );
    for name in ["web", "api"] {
        world
            .wait_parent("MyApp", name, "True", Some("Reconciled"))
            .await;
    }
    world
        .merge(
            "example.sous.dev/v1",
            "MyApp",
            "web",
            json!({"spec": {"replicas": 3}}),
        )
        .await;
    world
        .wait_parent("MyApp", "web", "True", Some("Reconciled"))
        .await;
    let deployment = world
        .get("apps/v1", "Deployment", "web")
        .await
        .context("Deployment web")?;
    assert_eq!(
        deployment.data["spec"]["replicas"], 3,
        "the new leader updates children"
    );

    // Uninstall: the host's objects go, the user's stay.
    release.helm_command(&["uninstall", &release.name])?;
    release
        .wait_pods("no host pod", |pods| pods.is_empty())
        .await;
    release.wait_no_lease().await;
    for (api_version, kind) in [
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("policy/v1", "PodDisruptionBudget"),
    ] {
        let left = release.objects_of_release(api_version, kind).await;
        assert!(
            left.is_empty(),
            "{kind} of the release left after uninstall: {left:?}"
        );
    }
    assert!(
        world
            .get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "reconcilers.sous.dev"
            )
            .await
            .is_some(),
        "CRDs are kept, as Helm does"
    );
    for name in ["web", "api"] {
        assert!(
            world
                .get("example.sous.dev/v1", "MyApp", name)
                .await
                .is_some(),
            "parent {name}"
        );
        assert!(
            world.get("apps/v1", "Deployment", name).await.is_some(),
            "child of {name}"
        );
    }
    Ok(())
}

/// Two replicas: one leads; deleting its pod hands the Lease to the other
/// within moments; freezing the leader (SIGSTOP) past its Lease hands it over
/// too, and the frozen host, once resumed, exits (and restarts as a
/// candidate) rather than linger.
pub async fn two_replicas_fail_over(env: Env) -> anyhow::Result<()> {
    let Some(release) = Release::prepare(env).await? else {
        return Ok(());
    };
    let world = &release.world;
    release.helm("install", &["replicas=2"])?;
    let pods = release
        .wait_pods("two host pods Ready", |pods| ready_count(pods) == 2)
        .await;
    let leader = release.wait_holder("a leader", |_| true).await;
    anyhow::ensure!(
        pods.iter().any(|pod| pod_name(pod) == leader),
        "the leader {leader} is a host pod"
    );
    world.apply(my_app("one", 1)).await;
    world
        .wait_parent("MyApp", "one", "True", Some("Reconciled"))
        .await;
    for pod in &pods {
        let metrics = release.metrics(pod).await;
        let reconciled = metrics.contains("sous_reconciles_total{");
        assert_eq!(
            reconciled,
            pod_name(pod) == leader,
            "only the leader reconciles ({}):\n{metrics}",
            pod_name(pod)
        );
    }

    // The leader's pod deleted: it releases the Lease as it stops.
    let deleted = Instant::now();
    Api::<Pod>::namespaced(world.client.clone(), &world.ns)
        .delete(&leader, &DeleteParams::default())
        .await?;
    let successor = release
        .wait_holder("another pod leading", |holder| holder != leader)
        .await;
    world.apply(my_app("two", 1)).await;
    world
        .wait_parent("MyApp", "two", "True", Some("Reconciled"))
        .await;
    println!(
        "e2e node: leader pod deleted: {successor} leads and reconciled a new parent {:.1?} later",
        deleted.elapsed()
    );

    // The leader frozen past its Lease.
    let frozen_pod = release.pod(&successor).await?;
    let node = release.node();
    let uid = frozen_pod.metadata.uid.clone().context("a pod's uid")?;
    let host_process = node
        .pod_process(&uid, HOST_PROGRAM)
        .context("the leader's sous process on the node")?;
    let restarts = restart_count(&frozen_pod);
    let frozen = Instant::now();
    node.signal(host_process, "STOP");
    let taker = release
        .wait_holder("a pod taking over from the frozen leader", |holder| {
            holder != successor
        })
        .await;
    world.apply(my_app("three", 1)).await;
    world
        .wait_parent("MyApp", "three", "True", Some("Reconciled"))
        .await;
    println!(
        "e2e node: leader frozen: {taker} leads and reconciled a new parent {:.1?} later (Lease {LEASE:?})",
        frozen.elapsed()
    );
    node.signal(host_process, "CONT");
    let resumed = release
        .wait_pod(&successor, "the resumed host to exit and restart", |pod| {
            restart_count(pod) > restarts
        })
        .await;
    let terminated = &resumed
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .context("the resumed host's last state")?;
    assert_eq!(
        terminated.exit_code, 1,
        "it exited by itself (not killed by a probe): {terminated:?}"
    );
    release
        .wait_pods("both pods Ready again", |pods| ready_count(pods) == 2)
        .await;
    assert_eq!(
        release.holder().await.as_deref(),
        Some(taker.as_str()),
        "the resumed host is a candidate"
    );
    Ok(())
}

/// A release of the chart in a trial's namespace, which enforces the
/// restricted Pod Security Standard, with the my-app Reconciler applied.
struct Release {
    world: World,
    name: String,
    helm: PathBuf,
}

impl Release {
    /// The trial's world ready for a release; `None` (with a line saying so)
    /// when there is no helm.
    async fn prepare(env: Env) -> anyhow::Result<Option<Self>> {
        let helm = match chart::helm() {
            Ok(helm) => helm,
            Err(reason) => {
                println!("e2e node: skipped: {reason}");
                return Ok(None);
            }
        };
        let node = env.cluster.node().context("a node trial runs on a node")?;
        let archive = image::archive().map_err(anyhow::Error::msg)?;
        for tag in [TAG, NEXT_TAG] {
            node.import_image(&archive, &format!("sous:{tag}"))?;
        }
        let world = World::new(env).await;
        world
            .namespace(
                &world.ns,
                json!({"pod-security.kubernetes.io/enforce": "restricted"}),
            )
            .await;
        let source = world.upload("my-app", &guest_bytes("my_app")).await;
        world.reconciler("my-app", my_app_reconciler(source)).await;
        Ok(Some(Self {
            name: world.ns.clone(),
            world,
            helm,
        }))
    }

    fn node(&self) -> &Node {
        self.world
            .cluster
            .node()
            .expect("a node trial runs on a node")
    }

    /// `helm install|upgrade` of the chart with the image and the API
    /// server's address, and `sets` (`key=<JSON>` each).
    fn helm(&self, verb: &str, sets: &[&str]) -> anyhow::Result<()> {
        let api_server: SocketAddr = self.node().api_server();
        let env = json!([
            {"name": "KUBERNETES_SERVICE_HOST", "value": api_server.ip().to_string()},
            {"name": "KUBERNETES_SERVICE_PORT", "value": api_server.port().to_string()},
        ]);
        let mut values = vec![
            "image.repository=\"sous\"".to_owned(),
            format!("image.tag={}", json!(TAG)),
            "image.pullPolicy=\"Never\"".to_owned(),
            format!("extraEnv={env}"),
        ];
        values.extend(sets.iter().map(|set| (*set).to_owned()));
        let chart = chart::dir();
        let mut args = vec![verb, &self.name, chart.to_str().expect("a UTF-8 path")];
        for value in &values {
            args.extend(["--set-json", value]);
        }
        self.helm_command(&args)
    }

    fn helm_command(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new(&self.helm)
            .args(args)
            .args(["--namespace", &self.world.ns, "--kubeconfig"])
            .arg(self.world.cluster.kubeconfig_path())
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "helm {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.world.client.clone(), &self.world.ns)
    }

    /// The host pods of the release (not those being deleted).
    async fn pods(&self) -> kube::Result<Vec<Pod>> {
        let selector = format!("app.kubernetes.io/instance={}", self.name);
        let pods = self
            .pods_api()
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(pods
            .items
            .into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .collect())
    }

    async fn wait_pods(&self, what: &str, done: impl Fn(&[Pod]) -> bool) -> Vec<Pod> {
        wait_for(what, CONVERGE, || async {
            let pods = self.pods().await.map_err(|error| error.to_string())?;
            if done(&pods) {
                Ok(pods)
            } else {
                Err(summary(&pods))
            }
        })
        .await
    }

    async fn pod(&self, name: &str) -> anyhow::Result<Pod> {
        Ok(self.pods_api().get(name).await?)
    }

    async fn wait_pod(&self, name: &str, what: &str, done: impl Fn(&Pod) -> bool) -> Pod {
        wait_for(what, CONVERGE, || async {
            let pod = self
                .pods_api()
                .get(name)
                .await
                .map_err(|error| error.to_string())?;
            if done(&pod) {
                Ok(pod)
            } else {
                Err(summary(std::slice::from_ref(&pod)))
            }
        })
        .await
    }

    async fn lease(&self) -> Option<Lease> {
        Api::<Lease>::namespaced(self.world.client.clone(), &self.world.ns)
            .get_opt(LEASE_NAME)
            .await
            .expect("reading the Lease")
    }

    /// The Lease's holder, if any.
    async fn holder(&self) -> Option<String> {
        self.lease()
            .await?
            .spec?
            .holder_identity
            .filter(|holder| !holder.is_empty())
    }

    async fn lease_transitions(&self) -> Option<i32> {
        self.lease().await?.spec?.lease_transitions
    }

    async fn wait_holder(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        wait_for(what, CONVERGE, || async {
            match self.holder().await {
                Some(holder) if done(&holder) => Ok(holder),
                other => Err(other),
            }
        })
        .await
    }

    /// Waits until the Lease is gone (the garbage collector deletes it with
    /// the last pod that held it).
    async fn wait_no_lease(&self) {
        wait_for("the Lease gone with its pod", CONVERGE, || async {
            match self.lease().await {
                None => Ok(()),
                Some(lease) => Err(lease.metadata.owner_references),
            }
        })
        .await;
    }

    /// The objects of `kind` labelled as this release's.
    async fn objects_of_release(&self, api_version: &str, kind: &str) -> Vec<String> {
        let instance = format!("app.kubernetes.io/instance={}", self.name);
        self.world
            .api(api_version, kind)
            .await
            .list(&ListParams::default().labels(&instance))
            .await
            .expect("listing a kind")
            .items
            .into_iter()
            .filter_map(|object| object.metadata.name)
            .collect()
    }

    /// `/metrics` scraped from the pod's address, as Prometheus would.
    async fn metrics(&self, pod: &Pod) -> String {
        let ip = pod
            .status
            .as_ref()
            .and_then(|status| status.pod_ip.clone())
            .expect("a Ready pod has an IP");
        let (status, body) = http_get(
            SocketAddr::new(ip.parse().expect("a pod IP"), 8080),
            "/metrics",
        )
        .await;
        assert_eq!(status, 200, "/metrics of {}: {body}", pod_name(pod));
        body
    }

    /// The host process of `pod` runs as 65532, on a read-only root
    /// filesystem, without capabilities, under seccomp, as the restricted
    /// standard and the chart ask.
    fn check_confined(&self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().expect("a pod's uid");
        let pid = self
            .node()
            .pod_process(&uid, HOST_PROGRAM)
            .expect("the host's process on the node");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("the host's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        assert!(field("Uid:").starts_with("65532"), "uid: {}", field("Uid:"));
        assert_eq!(field("CapEff:"), "0000000000000000", "no capability");
        assert_eq!(field("Seccomp:"), "2", "seccomp filter (RuntimeDefault)");
        assert_eq!(field("NoNewPrivs:"), "1");
        let mounts =
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("the host's mounts");
        let root = mounts
            .lines()
            .find(|line| line.split(' ').nth(4) == Some("/"))
            .expect("the host's root mount");
        assert!(
            root.split(' ')
                .nth(5)
                .is_some_and(|options| options.split(',').any(|o| o == "ro")),
            "read-only root: {root}"
        );
    }
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn pod_image(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

fn ready_count(pods: &[Pod]) -> usize {
    pods.iter().filter(|pod| is_ready(pod)).count()
}

fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|containers| containers.first())
        .map_or(0, |container| container.restart_count)
}

/// Pods as `name: phase, ready, restarts` for a timeout's message.
fn summary(pods: &[Pod]) -> Value {
    pods.iter()
        .map(|pod| {
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            json!(format!(
                "{}: {phase}, ready {}, restarts {}",
                pod_name(pod),
                is_ready(pod),
                restart_count(pod)
            ))
        })
        .collect()
}
