//! `sous run`: the operator host, in or out of a cluster.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::CacheArgs;
use crate::leader::LeaseTiming;
use crate::operator::{self, OperatorOptions};
use crate::tenancy::{self, Tenancy};

/// Arguments of `sous run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The host's own namespace: its Lease, and the module ConfigMaps and
    /// ServiceAccounts of ClusterReconcilers.
    #[arg(long, env = "POD_NAMESPACE", default_value = super::DEFAULT_HOST_NAMESPACE)]
    pub namespace: String,
    /// Only serve the Reconcilers of this namespace (ClusterReconcilers are then ignored).
    #[arg(long, env = "SOUS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// This host's identity [default: the host name and process id].
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The UID of the pod this host runs in, named by `--identity` (the chart
    /// sets both): the pod then owns the leader Lease while it holds it, so
    /// the Lease goes with the installation.
    #[arg(long, env = "POD_UID", requires = "identity")]
    pub pod_uid: Option<String>,
    /// Elect one leader among the hosts of this namespace (needed with more than one replica).
    #[arg(long)]
    pub leader_elect: bool,
    /// How long a leader's Lease lasts without renewal, in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Where to serve `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub health_addr: SocketAddr,
    /// Guest calls at once across all reconcilers [default: the number of CPUs].
    #[arg(long)]
    pub guest_slots: Option<usize>,
    /// Only serve Reconcilers and ClusterReconcilers with these labels (a
    /// label selector, e.g. `sous.dev/shard=a`), so several installations
    /// can share a cluster.
    #[arg(long, env = "SOUS_RECONCILER_SELECTOR")]
    pub reconciler_selector: Option<String>,
    /// The ServiceAccount, in its own namespace, that a namespaced Reconciler
    /// without `spec.serviceAccountName` writes and reads as.
    #[arg(long, default_value = tenancy::DEFAULT_SERVICE_ACCOUNT, value_parser = service_account_name)]
    pub default_service_account: String,
    /// INSECURE: do not confine namespaced Reconcilers to their namespace, and
    /// let those without `spec.serviceAccountName` write as the host itself.
    /// Whoever may create a Reconciler may then take over the cluster.
    #[arg(long)]
    pub allow_tenant_escalation: bool,
    /// How often a running namespaced Reconciler's read access is reviewed
    /// again, in seconds (revoking its ServiceAccount's Role stops it).
    #[arg(long, default_value_t = tenancy::DEFAULT_ACCESS_RECHECK.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub access_recheck_seconds: u64,
    /// Compiled-module cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Runs the host until SIGINT or SIGTERM.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let config = kube::Config::infer()
            .await
            .context("finding the Kubernetes configuration (in-cluster or KUBECONFIG)")?;
        operator::run(config, options(args), shutdown_signal()).await
    })
}

fn options(args: &RunArgs) -> OperatorOptions {
    let lease_duration = Duration::from_secs(args.lease_duration_seconds);
    OperatorOptions {
        namespace: args.namespace.clone(),
        watch_namespace: args.watch_namespace.clone(),
        identity: args.identity.clone().unwrap_or_else(default_identity),
        leader_election: args
            .leader_elect
            .then(|| LeaseTiming::scaled(lease_duration)),
        pod_uid: args.pod_uid.clone(),
        health_addr: Some(args.health_addr),
        cache_dir: args.cache.dir(),
        guest_slots: args
            .guest_slots
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
        reconciler_selector: args.reconciler_selector.clone(),
        tenancy: Tenancy {
            default_service_account: args.default_service_account.clone(),
            allow_escalation: args.allow_tenant_escalation,
            access_recheck: Duration::from_secs(args.access_recheck_seconds),
        },
    }
}

/// A ServiceAccount name, or why not.
fn service_account_name(value: &str) -> Result<String, String> {
    if crate::validate::is_valid_object_name(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not a ServiceAccount name (lowercase letters, digits, `-` and `.`)"
        ))
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "sous".into());
    format!("{host}-{}", std::process::id())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}
