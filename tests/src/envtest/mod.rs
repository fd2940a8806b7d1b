//! A real Kubernetes control plane for the e2e tests, the envtest way.
//!
//! [`TestCluster::start`] runs etcd and kube-apiserver from
//! `$KUBEBUILDER_ASSETS` (else `/usr/local/kubebuilder/bin`), plus
//! kube-controller-manager from there when present (ownerReference garbage
//! collection), all on loopback ports; or, with `SOUS_E2E_USE_EXISTING=1`,
//! uses the cluster `KUBECONFIG` names and starts nothing. With neither it
//! answers `None` and [`TestCluster::skip_reason`] says why.
//!
//! [`TestCluster::start_with_node`] adds a real node (see [`node`]): the API
//! server then listens on the machine's own address, which pods reach.
//!
//! With `SOUS_E2E_KEEP=1` the directory of a failed run (logs, etcd data,
//! kubeconfig) is kept and its path printed.

mod binaries;
mod helpers;
mod local;
pub mod node;
mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tempfile::TempDir;

pub use helpers::{apply_yaml, create_namespace, wait_crd_established, wait_for};

use binaries::Binaries;
use local::LocalControlPlane;
use node::{Node, NodeBinaries};

/// The user in `system:masters` whose token the kubeconfig's current context
/// holds.
pub const ADMIN: &str = "admin";

/// Users of a started control plane that authenticate with a token of their
/// own and belong to no group (so RBAC grants them nothing until a test binds
/// a role): see [`TestCluster::token_user_config`].
pub const TOKEN_USERS: &[&str] = &["alice", "bob"];

/// `1` here: use the cluster of `KUBECONFIG` rather than start one.
const USE_EXISTING: &str = "SOUS_E2E_USE_EXISTING";

/// `1` here: keep the files of a failed run.
const KEEP: &str = "SOUS_E2E_KEEP";

/// A control plane for the duration of a test binary. Its processes are
/// killed when it is dropped.
pub struct TestCluster {
    // Fields drop in order: the node stops before the control plane, and the
    // processes stop before their files go.
    node: Option<Node>,
    control_plane: Option<LocalControlPlane>,
    admin: kube::Config,
    users: BTreeMap<&'static str, kube::Config>,
    kubeconfig: PathBuf,
    dir: Option<TempDir>,
}

impl TestCluster {
    /// Why no cluster can be had here, in one line; `None` when
    /// [`start`](Self::start) has something to run against.
    pub fn skip_reason() -> Option<String> {
        if use_existing() {
            return None;
        }
        Binaries::find().err()
    }

    /// Starts a control plane (or connects to the existing one); `None` when
    /// there is neither (see [`skip_reason`](Self::skip_reason)). Fails with
    /// the end of a process's log when it does not become ready.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        if use_existing() {
            return Self::existing(temp_dir()?).await.map(Some);
        }
        let Ok(binaries) = Binaries::find() else {
            return Ok(None);
        };
        Self::start_local(&binaries, None).await.map(Some)
    }

    /// Starts etcd and kube-apiserver only, even where
    /// kube-controller-manager is found: no controller acts on the objects
    /// (a benchmark measures the host alone); `None` as for
    /// [`start`](Self::start). Not for an existing cluster.
    pub async fn start_api_only() -> anyhow::Result<Option<Self>> {
        let Ok(binaries) = Binaries::find() else {
            return Ok(None);
        };
        let binaries = Binaries {
            controller_manager: None,
            ..binaries
        };
        Self::start_local(&binaries, None).await.map(Some)
    }

    /// Why no node can be had here, in one line; `None` when
    /// [`start_with_node`](Self::start_with_node) can start one.
    pub fn node_skip_reason() -> Option<String> {
        if use_existing() {
            return Some(
                "SOUS_E2E_USE_EXISTING=1: the node trials start a node of their own".into(),
            );
        }
        let binaries = match Binaries::find() {
            Ok(binaries) => binaries,
            Err(reason) => return Some(reason),
        };
        if binaries.controller_manager.is_none() {
            return Some(
                "no kube-controller-manager beside kube-apiserver (Deployments need it)".into(),
            );
        }
        NodeBinaries::find().err()
    }

    /// Starts a control plane listening on the machine's own address and a
    /// node registered with it; `None` when there is none to be had (see
    /// [`node_skip_reason`](Self::node_skip_reason)).
    pub async fn start_with_node() -> anyhow::Result<Option<Self>> {
        if Self::node_skip_reason().is_some() {
            return Ok(None);
        }
        let (Ok(binaries), Ok(node_binaries)) = (Binaries::find(), NodeBinaries::find()) else {
            return Ok(None);
        };
        Self::start_local(&binaries, Some(&node_binaries))
            .await
            .map(Some)
    }

    /// Starts a control plane of the harness's own (on loopback, or on the
    /// machine's address with a node).
    async fn start_local(binaries: &Binaries, node: Option<&NodeBinaries>) -> anyhow::Result<Self> {
        let dir = temp_dir()?;
        match Self::start_in(binaries, node, dir.path()).await {
            Ok(mut cluster) => {
                cluster.dir = Some(dir);
                Ok(cluster)
            }
            Err(error) => Err(error.context(match keep(dir, true) {
                Some(path) => format!("starting the control plane (files kept in {path})"),
                None => "starting the control plane".to_owned(),
            })),
        }
    }

    async fn start_in(
        binaries: &Binaries,
        node_binaries: Option<&NodeBinaries>,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let address = match node_binaries {
            Some(_) => node::machine_address()?,
            None => local::LOOPBACK,
        };
        let (control_plane, kubeconfig) = local::start(binaries, dir, address).await?;
        let mut users = BTreeMap::new();
        for user in TOKEN_USERS {
            users.insert(*user, context_config(&kubeconfig, user).await?);
        }
        let admin = context_config(&kubeconfig, ADMIN).await?;
        let mut cluster = Self {
            node: None,
            control_plane: Some(control_plane),
            admin,
            users,
            kubeconfig,
            dir: None,
        };
        if let Some(node_binaries) = node_binaries {
            let client = cluster.client().await;
            let api_server = cluster
                .control_plane
                .as_ref()
                .expect("started")
                .api_server();
            cluster.node = Some(
                Node::start(node_binaries, dir, &cluster.kubeconfig, api_server, &client)
                    .await
                    .context("starting the node")?,
            );
        }
        Ok(cluster)
    }

    async fn existing(dir: TempDir) -> anyhow::Result<Self> {
        let merged = Kubeconfig::read()
            .context("reading KUBECONFIG (SOUS_E2E_USE_EXISTING=1 needs a kubeconfig)")?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&merged)?)?;
        let admin = kube::Config::from_custom_kubeconfig(merged, &KubeConfigOptions::default())
            .await
            .context("loading the current context of KUBECONFIG")?;
        kube::Client::try_from(admin.clone())?
            .apiserver_version()
            .await
            .context("reaching the cluster of KUBECONFIG (SOUS_E2E_USE_EXISTING=1)")?;
        Ok(Self {
            node: None,
            control_plane: None,
            admin,
            users: BTreeMap::new(),
            kubeconfig,
            dir: Some(dir),
        })
    }

    /// The admin's configuration (`system:masters`, or the current context of
    /// an existing cluster).
    pub fn config(&self) -> kube::Config {
        self.admin.clone()
    }

    /// A new admin client. Make one per test: a client must not outlive the
    /// tokio runtime it was made in.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("a client from the admin configuration")
    }

    /// The admin's configuration impersonating `user` in `groups`: requests
    /// made with it are authorized as that user, so RBAC bounds them. (The
    /// apiserver adds `system:authenticated` itself.)
    pub fn config_as(&self, user: &str, groups: &[&str]) -> kube::Config {
        let mut config = self.config();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups =
            (!groups.is_empty()).then(|| groups.iter().map(|group| (*group).to_owned()).collect());
        config
    }

    /// The configuration of one of [`TOKEN_USERS`], authenticating with its own
    /// token; `None` for an existing cluster or another name.
    pub fn token_user_config(&self, user: &str) -> Option<kube::Config> {
        self.users.get(user).cloned()
    }

    /// A kubeconfig file for subprocesses (`sous push`, `sous run`): its
    /// current context is the admin; a started control plane also has a
    /// context per token user, named after it.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The process id of the kube-apiserver this harness started (none for
    /// an existing cluster, or while it is stopped).
    pub fn apiserver_pid(&self) -> Option<u32> {
        self.control_plane.as_ref()?.apiserver_pid()
    }

    /// The node, when this control plane was started with one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// Whether kube-controller-manager runs, so that owned objects are
    /// garbage-collected with their owner. Assumed of an existing cluster.
    pub fn has_controller_manager(&self) -> bool {
        self.control_plane
            .as_ref()
            .is_none_or(LocalControlPlane::has_controller_manager)
    }

    /// Whether this harness started the control plane itself, so a trial
    /// may stop and start its processes (not an existing cluster).
    pub fn can_inject_faults(&self) -> bool {
        self.control_plane.is_some()
    }

    /// Kills kube-apiserver. Fails for an existing cluster.
    pub fn stop_apiserver(&self) -> anyhow::Result<()> {
        self.local()?.stop_apiserver();
        Ok(())
    }

    /// Starts kube-apiserver again and waits until it is ready.
    pub async fn start_apiserver(&self) -> anyhow::Result<()> {
        self.local()?.start_apiserver().await
    }

    /// Kills etcd and starts it again on its data.
    pub async fn restart_etcd(&self) -> anyhow::Result<()> {
        self.local()?.restart_etcd().await
    }

    fn local(&self) -> anyhow::Result<&LocalControlPlane> {
        self.control_plane
            .as_ref()
            .context("an existing cluster's processes cannot be stopped by the tests")
    }

    /// Stops the control plane and removes its files; when `failed` and
    /// `SOUS_E2E_KEEP=1`, keeps them and answers where.
    pub fn stop(mut self, failed: bool) -> Option<String> {
        drop(self.node.take());
        drop(self.control_plane.take());
        keep(self.dir.take()?, failed)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        drop(self.node.take());
        drop(self.control_plane.take());
        if let Some(dir) = self.dir.take()
            && let Some(path) = keep(dir, std::thread::panicking())
        {
            eprintln!("e2e: files kept in {path}");
        }
    }
}

/// The directory of this run's files.
fn temp_dir() -> anyhow::Result<TempDir> {
    tempfile::Builder::new()
        .prefix("sous-e2e-")
        .tempdir()
        .context("creating the e2e directory")
}

fn use_existing() -> bool {
    std::env::var(USE_EXISTING).is_ok_and(|value| value == "1")
}

/// Keeps `dir` when `failed` and `SOUS_E2E_KEEP=1`, answering its path; else
/// removes it.
fn keep(dir: TempDir, failed: bool) -> Option<String> {
    let keep = failed && std::env::var(KEEP).is_ok_and(|value| value == "1");
    keep.then(|| dir.keep().display().to_string())
}

/// The configuration of `context` in the kubeconfig file at `path`.
async fn context_config(path: &Path, context: &str) -> anyhow::Result<kube::Config> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| format!("loading context `{context}` of {}", path.display()))
}
