//! The spine of one reconciler: a kube-runtime `Controller` over the parent
//! kind, triggered by the parents, their owned children, related objects and
//! module swaps, running one [`pass`] per parent.
//!
//! Stages, one file each: [`observe`] -> [`guest`] -> validate (in
//! `crate::validate`, through the policy) -> [`apply`] -> [`prune`] ->
//! [`status`]; [`finalizer`] and [`events`] on the side.

pub mod adopt;
pub mod apply;
pub mod children;
pub mod departures;
pub mod drift;
pub mod events;
pub mod finalizer;
pub mod guest;
pub mod kinds;
pub mod labels;
pub mod leaving;
pub mod observe;
pub mod parent_metadata;
pub mod pass;
pub mod patches;
pub mod plan;
pub mod prune;
pub mod requests;
pub mod rollout;
pub mod status;
pub mod types;
pub mod write;

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use tokio::sync::watch;

use self::children::{ChildIndex, OwnWrites};
use self::departures::Departures;
use self::events::ParentEvents;
use self::guest::GuestCaller;
use self::kinds::{Kind, Kinds};
use self::observe::{ChildKind, RelatedSource};
use self::pass::Spine;
use self::requests::RequestBook;
use crate::crd::{ReconcilerKey, ReconcilerSpec, RelatedKind};
use crate::recovery::{Recovering, WatchBackoff};
use crate::registry::StatusReport;
use crate::runtime::LoadedModule;
use crate::telemetry::Metrics;

/// Parents reconciled at once by one reconciler unless its spec says otherwise.
const DEFAULT_CONCURRENCY: u16 = 4;

/// What a reconciler's controller is built from.
pub struct Setup {
    /// Which reconciler.
    pub key: ReconcilerKey,
    /// Its spec.
    pub spec: ReconcilerSpec,
    /// Its resolved kinds.
    pub kinds: Kinds,
    /// Calls the guest.
    pub caller: GuestCaller,
    /// The module serving now; every parent is reconciled again when it changes.
    pub module: watch::Receiver<Option<Arc<LoadedModule>>>,
    /// The host's own client.
    pub client: kube::Client,
    /// The client children are written with.
    pub writer: kube::Client,
    /// Events on parents.
    pub events: ParentEvents,
    /// Metrics of the host.
    pub metrics: Arc<Metrics>,
    /// Counters for the Reconciler's status.
    pub report: Arc<StatusReport>,
    /// The namespace parents are watched in (`None`: every namespace).
    pub scope: Option<String>,
}

/// Runs the controller of one reconciler until `shutdown` resolves.
pub async fn run(setup: Setup, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let Setup {
        key,
        spec,
        kinds,
        client,
        module,
        scope,
        ..
    } = &setup;
    let parent_resource = kinds.parent.resource.clone();
    let parent_writer = Writer::new(parent_resource.clone());
    let parents = parent_writer.as_reader();
    // Checked before the reconciler starts (`crate::crd::check`).
    let selector = spec
        .parent_selector
        .as_ref()
        .and_then(|selector| selector.to_selector("spec.parentSelector").ok())
        .filter(|selector| !selector.selects_all());
    let mut parent_config = watcher::Config::default();
    if let Some(selector) = &selector {
        parent_config = parent_config.labels_from(selector);
    }
    let (departures, candidates) = Departures::new(selector);
    let departures = Arc::new(departures);
    let following = departures.clone();
    let parent_stream = watcher(
        apply::api_for(client, &kinds.parent, scope.as_deref()),
        parent_config,
    )
    .modify(types::typed(&parent_resource))
    .recovering()
    .inspect_ok(move |event| following.follow(event))
    .reflect(parent_writer)
    .applied_objects()
    .predicate_filter(parent_changed, Default::default());
    // The controller backs off its merged triggers too: as quickly as the
    // watches themselves (see `crate::recovery`).
    let mut controller =
        Controller::for_stream_with(parent_stream, parents.clone(), parent_resource.clone())
            .trigger_backoff(WatchBackoff::default());

    let own_writes = Arc::new(OwnWrites::default());
    let child_scope = children_scope(spec, scope.as_deref());
    let mut children = Vec::new();
    for kind in &kinds.children {
        let child = ChildKind {
            kind: kind.clone(),
            index: Arc::new(ChildIndex::default()),
        };
        let stream = child_stream(client, key, &child, child_scope.as_deref(), &own_writes);
        controller = controller.owns_stream_with(stream, kind.resource.clone());
        children.push(child);
    }

    let requests = Arc::new(RequestBook::default());
    let mut related = Vec::new();
    for (kind, selection) in &kinds.related {
        let related_writer = Writer::new(kind.resource.clone());
        let store = related_writer.as_reader();
        let namespace = selection.namespace_for(scope.as_deref());
        let stream = watcher(
            apply::api_for(client, kind, namespace),
            related_config(selection),
        )
        .modify(types::typed(&kind.resource))
        .recovering()
        .reflect(related_writer)
        .touched_objects();
        related.push(RelatedSource {
            kind: kind.clone(),
            selection: selection.clone(),
            store,
        });
        controller = if selection.on_request {
            let (book, namespaced, parents) = (requests.clone(), kind.namespaced, parents.clone());
            let mapper = move |object: DynamicObject| {
                book.forget_gone(&parents);
                let value = serde_json::to_value(&object).expect("objects serialize");
                book.parents_asking_for(&value, namespaced)
            };
            controller.watches_stream_with(stream, mapper, kind.resource.clone())
        } else {
            let mapper = parents_seeing(parents.clone(), parent_resource.clone(), kind, selection);
            controller.watches_stream_with(stream, mapper, kind.resource.clone())
        };
    }

    let concurrency = spec
        .max_concurrent_reconciles
        .unwrap_or(DEFAULT_CONCURRENCY);
    let (key, module_swapped) = (key.clone(), module_swaps(module.clone()));
    let spine = Spine {
        setup,
        children,
        related: related.into(),
        own_writes,
        failures: Default::default(),
        drift: Default::default(),
        status_ignored: Default::default(),
        departures,
        requests,
    };
    let spine = Arc::new(spine);
    let leavers = tokio::spawn(departures::serve(Arc::downgrade(&spine), candidates));
    tracing::info!(reconciler = %key, parent = %parent_resource.kind, "controller started");
    controller
        .with_config(controller::Config::default().concurrency(concurrency))
        .reconcile_all_on(module_swapped)
        .graceful_shutdown_on(shutdown)
        .run(pass::reconcile, pass::error_policy, spine)
        .for_each(|result| {
            if let Err(error) = result {
                log_controller_error(&key, &error);
            }
            std::future::ready(())
        })
        .await;
    leavers.abort();
    tracing::info!(reconciler = %key, "controller stopped");
}

/// Which changes of a parent deserve a pass: its spec (generation), its
/// labels and annotations, and the start of its deletion. The host's own
/// writes (status, finalizer) change none of these.
fn parent_changed(parent: &DynamicObject) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    parent.metadata.uid.hash(&mut hasher);
    parent.metadata.generation.hash(&mut hasher);
    parent
        .metadata
        .deletion_timestamp
        .is_some()
        .hash(&mut hasher);
    predicates::labels(parent).hash(&mut hasher);
    predicates::annotations(parent).hash(&mut hasher);
    Some(hasher.finish())
}

/// Children are watched in the reconciler's namespace unless its policy lets
/// them land elsewhere.
fn children_scope(spec: &ReconcilerSpec, scope: Option<&str>) -> Option<String> {
    let elsewhere = spec.policy.as_ref().is_some_and(|policy| {
        policy.allow_cluster_scoped
            || policy
                .allowed_namespaces
                .iter()
                .flatten()
                .any(|namespace| Some(namespace.as_str()) != scope)
    });
    scope.filter(|_| !elsewhere).map(str::to_string)
}

/// The watch of one child kind: only this reconciler's children (by label),
/// indexed by parent UID; what the index calls a change triggers the
/// parent, except the host's own writes.
fn child_stream(
    client: &kube::Client,
    key: &ReconcilerKey,
    child: &ChildKind,
    namespace: Option<&str>,
    own_writes: &Arc<OwnWrites>,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static {
    let config = watcher::Config::default().labels(&labels::children_selector(key));
    let index = child.index.clone();
    let own_writes = own_writes.clone();
    let kind = child.kind.resource.kind.clone();
    watcher(apply::api_for(client, &child.kind, namespace), config)
        .modify(types::typed(&child.kind.resource))
        .recovering()
        .map_ok(move |event| stream::iter(index.apply(&event).into_iter().map(Ok)))
        .try_flatten()
        .try_filter(move |object| std::future::ready(!own_writes.is_own(&kind, object)))
}

/// Watches only the related objects the selection names: by label
/// selector, and by name.
fn related_config(selection: &RelatedKind) -> watcher::Config {
    let mut config = watcher::Config::default();
    // Checked before the reconciler starts (`crate::crd::check`).
    if let Ok(selector) = selection.label_selector("spec.related[].selector")
        && !selector.selects_all()
    {
        config = config.labels_from(&selector);
    }
    if let Some(name) = &selection.name {
        config = config.fields(&format!("metadata.name={name}"));
    }
    config
}

/// Maps a related object to the parents that see it: those in its
/// namespace, or every parent when the selection names a namespace of its
/// own or the kind is cluster-scoped.
fn parents_seeing(
    parents: Store<DynamicObject>,
    resource: ApiResource,
    kind: &Kind,
    selection: &RelatedKind,
) -> impl Fn(DynamicObject) -> Vec<ObjectRef<DynamicObject>> + Send + Sync + 'static {
    let everyone = selection.namespace.is_some() || !kind.namespaced;
    move |object| {
        parents
            .state()
            .iter()
            .filter(|parent| everyone || parent.metadata.namespace == object.metadata.namespace)
            .map(|parent| ObjectRef::from_obj_with(parent.as_ref(), resource.clone()))
            .collect()
    }
}

/// One `()` per module swap.
fn module_swaps(
    module: watch::Receiver<Option<Arc<LoadedModule>>>,
) -> impl Stream<Item = ()> + Send + 'static {
    stream::unfold(module, |mut module| async move {
        module.changed().await.ok()?;
        Some(((), module))
    })
}

fn log_controller_error(
    key: &ReconcilerKey,
    error: &controller::Error<pass::PassError, watcher::Error>,
) {
    match error {
        // Already logged by the pass, with the parent's name.
        controller::Error::ReconcilerFailed(..) => {}
        controller::Error::ObjectNotFound(object) => {
            tracing::debug!(reconciler = %key, parent = %object.name, "parent gone before its pass");
        }
        other => tracing::warn!(reconciler = %key, error = %other, "controller error"),
    }
}
