//! The registry: watches Reconciler and ClusterReconciler objects and keeps
//! one running reconciler per object — started when it appears, restarted
//! when its spec changes (or only handed the new module source when nothing
//! else changed), stopped when it goes.

mod crds;
mod instance;
mod module;
mod release;
mod status;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::{StreamExt, stream};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta};
use kube::runtime::watcher;
use tokio::sync::Semaphore;

pub use self::instance::Instance;
use self::release::ReconcilerObject;
pub use self::status::{MODULE_READY, READY, StatusReport};
use crate::crd::{ClusterReconciler, ModuleSource, Reconciler, ReconcilerKey, ReconcilerSpec};
use crate::operator::OperatorOptions;
use crate::recovery::Recovering;
use crate::runtime::Runtime;
use crate::telemetry::Metrics;
use crate::tenancy::Tenancy;

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
    /// Only Reconcilers and ClusterReconcilers with these labels are served.
    pub reconciler_selector: Option<String>,
    /// How namespaced Reconcilers are confined.
    pub tenancy: Tenancy,
    /// The user name the API server knows the host by, when it said.
    pub user: Option<String>,
    /// Bumped whenever a CustomResourceDefinition changes.
    crd_changes: crds::CrdChanges,
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
        user: Option<String>,
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
            reconciler_selector: options.reconciler_selector.clone(),
            tenancy: options.tenancy.clone(),
            user,
            crd_changes: crds::CrdChanges::new(0),
            modules_loaded: AtomicI64::new(0),
        }
    }

    /// Counts modules serving (`+1` on a first load, `-1` when a reconciler stops).
    fn modules_loaded(&self, delta: i64) {
        let count = self.modules_loaded.fetch_add(delta, Ordering::Relaxed) + delta;
        self.metrics.set_modules_loaded(count);
    }
}

/// A Reconciler or ClusterReconciler as the registry sees it.
struct Declared {
    key: ReconcilerKey,
    spec: ReconcilerSpec,
    meta: ObjectMeta,
}

impl Declared {
    fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    fn object(&self) -> ReconcilerObject<'_> {
        ReconcilerObject {
            key: &self.key,
            spec: &self.spec,
            meta: &self.meta,
        }
    }
}

impl From<Reconciler> for Declared {
    fn from(object: Reconciler) -> Self {
        Self {
            key: ReconcilerKey::namespaced(
                &object.namespace().unwrap_or_default(),
                &object.name_any(),
            ),
            spec: object.spec.0,
            meta: object.metadata,
        }
    }
}

impl From<ClusterReconciler> for Declared {
    fn from(object: ClusterReconciler) -> Self {
        Self {
            key: ReconcilerKey::cluster(&object.name_any()),
            spec: object.spec.0,
            meta: object.metadata,
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
    let crd_watch = tokio::spawn(crds::watch(host.client.clone(), host.crd_changes.clone()));
    let reconcilers = match &host.watch_namespace {
        Some(namespace) => Api::<Reconciler>::namespaced(host.client.clone(), namespace),
        None => Api::all(host.client.clone()),
    };
    let config = match &host.reconciler_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let namespaced = watcher(reconcilers, config.clone())
        .recovering()
        .map(|event| (Source::Namespaced, event.map(declared)))
        .boxed();
    // Restricted to one namespace, the host serves no ClusterReconciler.
    let cluster = match &host.watch_namespace {
        Some(_) => stream::pending().boxed(),
        None => watcher(Api::<ClusterReconciler>::all(host.client.clone()), config)
            .recovering()
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
    crd_watch.abort();
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

/// Starts, restarts, updates or stops the reconciler `declared` describes;
/// keeps its release finalizer, and releases its parents once it is deleted.
async fn declare(
    host: &Arc<Host>,
    running: &mut HashMap<ReconcilerKey, Instance>,
    declared: Declared,
) {
    if declared.deleting() {
        if let Some(instance) = running.remove(&declared.key) {
            instance.stop().await;
        }
        let host = host.clone();
        tokio::spawn(async move { declared.object().release_until_done(&host).await });
        return;
    }
    if let Err(error) = declared.object().keep_finalizer(host).await {
        tracing::warn!(reconciler = %declared.key, %error, "could not update the reconciler's release finalizer");
    }
    let Declared { key, spec, meta } = declared;
    let generation = meta.generation;
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

/// Whether only the module's ConfigMaps or pin changed, so the module can be
/// swapped without a restart. A change of the module's namespace restarts:
/// it is checked (confinement) only when a reconciler starts.
fn same_but_module(old: &ReconcilerSpec, new: &ReconcilerSpec) -> bool {
    let mut old = old.clone();
    old.module = ModuleSource {
        namespace: old.module.namespace.clone(),
        ..new.module.clone()
    };
    old == *new
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(module: serde_json::Value) -> ReconcilerSpec {
        serde_json::from_value(json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
            "module": module,
        }))
        .unwrap()
    }

    #[test]
    fn a_new_module_reloads_in_place_but_a_new_module_namespace_restarts() {
        let old = spec(json!({"configMapRef": {"name": "a", "key": "k"}}));
        let new_map = spec(json!({"configMapRef": {"name": "b", "key": "k"}, "sha256": "00"}));
        assert!(same_but_module(&old, &new_map));
        let elsewhere =
            spec(json!({"configMapRef": {"name": "a", "key": "k"}, "namespace": "victim"}));
        assert!(!same_but_module(&old, &elsewhere));
        let mut other = new_map.clone();
        other.finalizer = true;
        assert!(!same_but_module(&old, &other));
    }
}
