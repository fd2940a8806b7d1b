//! `sous run` as a library: health and metrics endpoints, leader election,
//! then the registry of reconcilers until shutdown or lost leadership.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use futures::FutureExt;

use crate::leader::{LeaderElector, LeaseTiming};
use crate::policy;
use crate::registry::{self, Host};
use crate::runtime::{EngineOptions, Runtime, RuntimeOptions};
use crate::telemetry::{Health, Metrics, serve};
use crate::tenancy::{self, Tenancy};

/// Name of the Lease the hosts of one installation elect a leader with.
pub const LEASE_NAME: &str = "sous-leader";

/// How a host runs.
#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// The host's own namespace: its Lease, and the ConfigMaps and
    /// ServiceAccounts of ClusterReconcilers.
    pub namespace: String,
    /// Only serve the Reconcilers of this namespace (and no
    /// ClusterReconciler); `None`: every namespace.
    pub watch_namespace: Option<String>,
    /// This host's identity (Lease holder, event reporter).
    pub identity: String,
    /// Lease timings when leader election is on; `None` runs at once.
    pub leader_election: Option<LeaseTiming>,
    /// The UID of the pod this host runs in, whose name is `identity`: the
    /// pod then owns the Lease while it holds it, so the Lease goes with the
    /// installation. `None` (out of a cluster): the Lease has no owner.
    pub pod_uid: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None`: nowhere.
    pub health_addr: Option<SocketAddr>,
    /// Directory of precompiled modules; `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// Guest calls at once across all reconcilers (also the pool's slots).
    pub guest_slots: usize,
    /// Only serve Reconcilers and ClusterReconcilers matching this label
    /// selector; `None`: all.
    pub reconciler_selector: Option<String>,
    /// How namespaced Reconcilers are confined.
    pub tenancy: Tenancy,
}

/// Runs the host until `shutdown` resolves (or, with leader election, until
/// leadership is lost, which is an error: the process should exit and
/// restart as a candidate).
pub async fn run(
    config: kube::Config,
    options: OperatorOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = shutdown.shared();
    let client =
        kube::Client::try_from(config.clone()).context("building the Kubernetes client")?;
    let metrics = Arc::new(Metrics::new());
    let health = Health::default();
    let server = match options.health_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the health and metrics address {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
            Some(tokio::spawn(serve(
                listener,
                metrics.clone(),
                health.clone(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let version = client
        .apiserver_version()
        .await
        .context("reaching the Kubernetes API server")?;
    let user = tenancy::host_user(&client).await;
    tracing::info!(server = %version.git_version, identity = %options.identity, user = user.as_deref().unwrap_or("unknown"), namespace = %options.namespace, "connected");
    if options.tenancy.allow_escalation {
        tracing::warn!(
            "tenant escalation is allowed (--allow-tenant-escalation): namespaced Reconcilers are not confined to their namespace and, without spec.serviceAccountName, write as the host itself; whoever may create a Reconciler may take over the cluster"
        );
    }
    let runtime = Runtime::new(&RuntimeOptions {
        engine: EngineOptions {
            pool_slots: Some(u32::try_from(options.guest_slots).unwrap_or(u32::MAX)),
            // The most any policy may grant, so every valid policy fits a slot.
            max_memory_bytes: (policy::MAX_MEMORY_MIB as usize) << 20,
        },
        cache_dir: options.cache_dir.clone(),
    })
    .context("starting the WebAssembly runtime")?;
    let host = Arc::new(Host::new(
        config,
        client.clone(),
        Arc::new(runtime),
        metrics,
        &options,
        user,
    ));
    health.set_ready(true);
    let result = match options.leader_election {
        None => {
            registry::run(host, shutdown.clone()).await;
            Ok(())
        }
        Some(timing) => lead(host, &options, timing, shutdown.clone()).await,
    };
    health.set_ready(false);
    if let Some(server) = server {
        if result.is_err() {
            // Leadership lost (or another fatal error): exit now, so that the
            // pod is restarted as a candidate, rather than linger alive and
            // healthy while reconciling nothing until someone stops it.
            server.abort();
            return result;
        }
        shutdown.await;
        server
            .await
            .context("the health server task")?
            .context("serving health")?;
    }
    result
}

/// Waits to become leader, then runs the registry while leading.
async fn lead(
    host: Arc<Host>,
    options: &OperatorOptions,
    timing: LeaseTiming,
    shutdown: impl Future<Output = ()> + Clone + Send + 'static,
) -> anyhow::Result<()> {
    let elector = LeaderElector::new(
        host.client.clone(),
        &options.namespace,
        LEASE_NAME,
        &options.identity,
        timing,
    )
    .context("setting up leader election")?;
    let elector = match &options.pod_uid {
        Some(uid) => elector.owned_by_pod(uid),
        None => elector,
    };
    tracing::info!(identity = %options.identity, lease = LEASE_NAME, "waiting for leadership");
    let leadership = tokio::select! {
        leadership = elector.acquire() => leadership,
        () = shutdown.clone() => return Ok(()),
    };
    tracing::info!(identity = %options.identity, "leading: starting the reconcilers");
    let lost = tokio::select! {
        () = registry::run(host, shutdown.clone()) => false,
        () = leadership.lost() => true,
    };
    if lost {
        anyhow::bail!("leadership lost: another host may be reconciling now; exiting");
    }
    leadership
        .release()
        .await
        .context("releasing the leader Lease")?;
    Ok(())
}
