//! The registry: watches Reconciler and ClusterReconciler objects and keeps
//! one running reconciler per object — started when it appears, restarted
//! when its spec changes (or only handed the new module source when nothing
//! else changed), stopped when it goes.

mod instance;
mod module;
mod status;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::{StreamExt, stream};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::Semaphore;

pub use self::instance::Instance;
pub use self::status::{MODULE_READY, READY, StatusReport};
use crate::crd::{ClusterReconciler, Reconciler, ReconcilerKey, ReconcilerSpec};
use crate::operator::OperatorOptions;
use crate::runtime::Runtime;
use crate::telemetry::Metrics;

/// What every reconciler of one host shares.
pub struct Host {
    /// The host's own client.
    pub client: kube::Client,
    /// The configuration it came from (impersonating clients derive from it).
    pub config: kube::Config,
    /// The WebAssembly runtime.
    pub runtime: Arc<Runtime>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Guest calls allowed at once across all reconcilers.
    pub slots: Arc<Semaphore>,
    /// The host's own namespace (ClusterReconcilers' ConfigMaps and ServiceAccounts).
    pub namespace: String,
    /// This host's identity (events, leader election).
    pub identity: String,
    /// The one namespace whose Reconcilers are served, if restricted.
    pub watch_namespace: Option<String>,
    modules_loaded: AtomicI64,
}

impl Host {
    /// A host with no reconciler yet, set up as `options` say.
    pub fn new(
        config: kube::Config,
        client: kube::Client,
        runtime: Arc<Runtime>,
        metrics: Arc<Metrics>,
        options: &OperatorOptions,
    ) -> Self {
        Self {
            client,
            config,
            runtime,
            metrics,
            slots: Arc::new(Semaphore::new(options.guest_slots)),
            namespace: options.namespace.clone(),
            identity: options.identity.clone(),
            watch_namespace: options.watch_namespace.clone(),
            modules_loaded: AtomicI64::new(0),
        }
    }

    /// Counts modules serving (`+1` on a first load, `-1` when a reconciler stops).
    fn modules_loaded(&self, delta: i64) {
        let count = self.modules_loaded.fetch_add(delta, Ordering::Relaxed) + delta;
        self.metrics.set_modules_loaded(count);
    }

    /// The client a reconciler writes children with: the host's own, or one
    /// impersonating `spec.serviceAccountName` (in the Reconciler's namespace,
    /// or the host's for a ClusterReconciler) so Kubernetes RBAC bounds it.
    fn writer_for(&self, key: &ReconcilerKey, spec: &ReconcilerSpec) -> kube::Result<kube::Client> {
        let Some(account) = &spec.service_account_name else {
            return Ok(self.client.clone());
        };
        let namespace = key.namespace.as_deref().unwrap_or(&self.namespace);
        let mut config = self.config.clone();
        // No impersonated groups: for a ServiceAccount user the apiserver adds
        // its groups itself, and impersonating groups would need the
        // `impersonate groups` permission, which reaches `system:masters`.
        config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{account}"));
        kube::Client::try_from(config)
    }
}

/// A Reconciler or ClusterReconciler as the registry sees it.
struct Declared {
    key: ReconcilerKey,
    spec: ReconcilerSpec,
    generation: Option<i64>,
    deleting: bool,
}

impl From<Reconciler> for Declared {
    fn from(object: Reconciler) -> Self {
        Self {
            key: ReconcilerKey::namespaced(
                &object.namespace().unwrap_or_default(),
                &object.name_any(),
            ),
            generation: object.meta().generation,
            deleting: object.meta().deletion_timestamp.is_some(),
            spec: object.spec.0,
        }
    }
}

impl From<ClusterReconciler> for Declared {
    fn from(object: ClusterReconciler) -> Self {
        Self {
            key: ReconcilerKey::cluster(&object.name_any()),
            generation: object.meta().generation,
            deleting: object.meta().deletion_timestamp.is_some(),
            spec: object.spec.0,
        }
    }
}

/// Which of the two kinds a watch event is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Namespaced,
    Cluster,
}

/// Runs every declared reconciler until `shutdown` resolves, then stops them all.
pub async fn run(host: Arc<Host>, shutdown: impl Future<Output = ()>) {
    let reconcilers = match &host.watch_namespace {
        Some(namespace) => Api::<Reconciler>::namespaced(host.client.clone(), namespace),
        None => Api::all(host.client.clone()),
    };
    let namespaced = watcher(reconcilers, watcher::Config::default())
        .default_backoff()
        .map(|event| (Source::Namespaced, event.map(declared)))
        .boxed();
    // Restricted to one namespace, the host serves no ClusterReconciler.
    let cluster = match &host.watch_namespace {
        Some(_) => stream::pending().boxed(),
        None => watcher(
            Api::<ClusterReconciler>::all(host.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .map(|event| (Source::Cluster, event.map(declared)))
        .boxed(),
    };
    let mut events = stream::select(namespaced, cluster);
    let mut running: HashMap<ReconcilerKey, Instance> = HashMap::new();
    let mut listing: HashMap<Source, HashSet<ReconcilerKey>> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        let (source, event) = tokio::select! {
            () = &mut shutdown => break,
            event = events.next() => match event {
                Some(event) => event,
                None => break,
            },
        };
        match event {
            Ok(watcher::Event::Apply(declared)) => declare(&host, &mut running, declared).await,
            Ok(watcher::Event::InitApply(declared)) => {
                listing
                    .entry(source)
                    .or_default()
                    .insert(declared.key.clone());
                declare(&host, &mut running, declared).await;
            }
            Ok(watcher::Event::Delete(declared)) => {
                if let Some(instance) = running.remove(&declared.key) {
                    tracing::info!(reconciler = %declared.key, "reconciler deleted");
                    instance.stop().await;
                }
            }
            Ok(watcher::Event::Init) => {
                listing.insert(source, HashSet::new());
            }
            Ok(watcher::Event::InitDone) => {
                // Gone while the watch was down: stop those of this kind not listed.
                let listed = listing.remove(&source).unwrap_or_default();
                let gone: Vec<_> = running
                    .keys()
                    .filter(|key| source_of(key) == source && !listed.contains(key))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(instance) = running.remove(&key) {
                        instance.stop().await;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "watching reconcilers failed; retrying"),
        }
    }
    futures::future::join_all(running.into_values().map(Instance::stop)).await;
}

/// The event with its object read as a [`Declared`].
fn declared<K: Into<Declared>>(event: watcher::Event<K>) -> watcher::Event<Declared> {
    match event {
        watcher::Event::Apply(object) => watcher::Event::Apply(object.into()),
        watcher::Event::Delete(object) => watcher::Event::Delete(object.into()),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(object) => watcher::Event::InitApply(object.into()),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

fn source_of(key: &ReconcilerKey) -> Source {
    if key.namespace.is_some() {
        Source::Namespaced
    } else {
        Source::Cluster
    }
}

/// Starts, restarts, updates or stops the reconciler `declared` describes.
async fn declare(
    host: &Arc<Host>,
    running: &mut HashMap<ReconcilerKey, Instance>,
    declared: Declared,
) {
    let Declared {
        key,
        spec,
        generation,
        deleting,
    } = declared;
    if deleting {
        if let Some(instance) = running.remove(&key) {
            instance.stop().await;
        }
        return;
    }
    if let Some(instance) = running.get(&key) {
        if instance.spec == spec {
            return;
        }
        if same_but_module(&instance.spec, &spec) {
            tracing::info!(reconciler = %key, "module source changed; reloading without a restart");
            instance.module_source.send_replace(spec.module.clone());
            instance.report.generation(generation);
            if let Some(instance) = running.get_mut(&key) {
                instance.spec = spec;
            }
            return;
        }
        tracing::info!(reconciler = %key, "spec changed; restarting");
        if let Some(instance) = running.remove(&key) {
            instance.stop().await;
        }
    } else {
        tracing::info!(reconciler = %key, "reconciler declared; starting");
    }
    let instance = Instance::start(host.clone(), key.clone(), spec, generation);
    running.insert(key, instance);
}

fn same_but_module(old: &ReconcilerSpec, new: &ReconcilerSpec) -> bool {
    let mut old = old.clone();
    old.module = new.module.clone();
    old == *new
}
