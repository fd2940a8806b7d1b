//! Parents that leave `spec.parentSelector`. The parent watch is filtered
//! by the selector at the API server, so a parent whose labels stop
//! matching simply disappears from it, like a deleted one. Every such
//! disappearance is a candidate: a watch `DELETED` event, an object missing
//! from a relist, and at start every parent outside the selector that still
//! carries the host's finalizer or has children. A candidate is read again
//! from the API server; if it exists and does not match, it is let go of
//! (see [`super::leaving`]) in a task of its own, retried until done.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kube::api::{DynamicObject, ListParams, ObjectMeta};
use kube::core::{Selector, SelectorExt as _};
use kube::runtime::watcher::Event;
use tokio::sync::mpsc;

use super::apply::api_for;
use super::finalizer;
use super::labels::FINALIZER;
use super::leaving::{self, Leaving};
use super::pass::{Spine, display_name};

/// First wait before letting go of a parent again after a failure; doubles
/// up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// `(namespace, name)` of a parent.
type ParentName = (Option<String>, String);

/// The candidates for leaving, and what the parent watch last listed.
pub struct Departures {
    selector: Option<Selector>,
    queue: mpsc::UnboundedSender<ParentName>,
    listed: Mutex<Listing>,
}

#[derive(Default)]
struct Listing {
    seen: HashSet<ParentName>,
    relisting: Option<HashSet<ParentName>>,
}

impl Departures {
    /// Departures from `selector` (none when there is no selector), and the
    /// receiving end of its candidates for [`serve`].
    pub fn new(selector: Option<Selector>) -> (Self, mpsc::UnboundedReceiver<ParentName>) {
        let (queue, candidates) = mpsc::unbounded_channel();
        let departures = Self {
            selector,
            queue,
            listed: Mutex::default(),
        };
        (departures, candidates)
    }

    /// Whether the selector selects the parent of `metadata` (always,
    /// without a selector).
    pub fn selects(&self, metadata: &ObjectMeta) -> bool {
        let empty = BTreeMap::new();
        let labels = metadata.labels.as_ref().unwrap_or(&empty);
        self.selector
            .as_ref()
            .is_none_or(|selector| selector.matches(labels))
    }

    /// Queues `parent` to be checked and let go of if it left.
    pub fn candidate(&self, parent: &DynamicObject) {
        if self.selector.is_some() {
            let _ = self.queue.send(name_of(&parent.metadata));
        }
    }

    /// Follows one event of the filtered parent watch: what it no longer
    /// shows becomes a candidate.
    pub fn follow(&self, event: &Event<DynamicObject>) {
        if self.selector.is_none() {
            return;
        }
        let mut listed = self.listed.lock().expect("departures lock");
        match event {
            Event::Apply(parent) => {
                listed.seen.insert(name_of(&parent.metadata));
            }
            Event::Delete(parent) => {
                listed.seen.remove(&name_of(&parent.metadata));
                let _ = self.queue.send(name_of(&parent.metadata));
            }
            Event::Init => listed.relisting = Some(HashSet::new()),
            Event::InitApply(parent) => {
                listed
                    .relisting
                    .get_or_insert_with(HashSet::new)
                    .insert(name_of(&parent.metadata));
            }
            Event::InitDone => {
                let now = listed.relisting.take().unwrap_or_default();
                for gone in listed.seen.difference(&now) {
                    let _ = self.queue.send(gone.clone());
                }
                listed.seen = now;
            }
        }
    }
}

fn name_of(metadata: &ObjectMeta) -> ParentName {
    (
        metadata.namespace.clone(),
        metadata.name.clone().unwrap_or_default(),
    )
}

/// Lets go of every candidate that left the selector, until the spine is
/// dropped. Starts with a sweep of the parents outside the selector.
pub async fn serve(spine: Weak<Spine>, mut candidates: mpsc::UnboundedReceiver<ParentName>) {
    if let Some(spine) = spine.upgrade() {
        sweep(&spine).await;
    }
    let in_flight: Arc<Mutex<HashSet<ParentName>>> = Arc::default();
    while let Some(candidate) = candidates.recv().await {
        if !in_flight
            .lock()
            .expect("in-flight lock")
            .insert(candidate.clone())
        {
            continue;
        }
        let (spine, in_flight) = (spine.clone(), in_flight.clone());
        tokio::spawn(async move {
            depart(&spine, &candidate).await;
            in_flight.lock().expect("in-flight lock").remove(&candidate);
        });
    }
}

/// Queues every parent outside the selector that the host still holds: it
/// carries the host's finalizer, or children are labelled with its UID.
async fn sweep(spine: &Spine) {
    if spine.departures.selector.is_none() {
        return;
    }
    for child in &spine.children {
        child.index.ready().await;
    }
    let kind = &spine.setup.kinds.parent;
    let api = api_for(&spine.setup.client, kind, spine.setup.scope.as_deref());
    let parents = match api.list_metadata(&ListParams::default()).await {
        Ok(parents) => parents,
        Err(error) => {
            tracing::warn!(reconciler = %spine.setup.key, %error, "could not list parents to find those that left the selector while the host was away");
            return;
        }
    };
    for parent in parents {
        let metadata = &parent.metadata;
        let uid = metadata.uid.as_deref().unwrap_or_default();
        let held = finalizer::has(metadata, FINALIZER)
            || spine
                .children
                .iter()
                .any(|child| !child.index.children_of(uid).is_empty());
        if held && !spine.departures.selects(metadata) {
            let _ = spine.departures.queue.send(name_of(metadata));
        }
    }
}

/// Reads `name` again and, while it exists outside the selector, lets go
/// of it, retrying with backoff.
async fn depart(spine: &Weak<Spine>, (namespace, name): &ParentName) {
    let mut wait = RETRY_BASE;
    loop {
        let Some(spine) = spine.upgrade() else {
            return;
        };
        let kind = &spine.setup.kinds.parent;
        let api = api_for(&spine.setup.client, kind, namespace.as_deref());
        let again = match api.get_opt(name).await {
            Ok(None) => return,
            Ok(Some(parent)) => {
                let deleting = finalizer::deleting(&parent);
                // A selected parent is the controller's, deleted or not; a
                // deleted one without the host's finalizer needs nothing.
                if spine.departures.selects(&parent.metadata)
                    || (deleting && !finalizer::has(&parent.metadata, FINALIZER))
                {
                    return;
                }
                let Some(module) = spine.setup.module.borrow().clone() else {
                    return;
                };
                let leaving = if deleting {
                    Leaving::Deleted
                } else {
                    Leaving::Deselected
                };
                match leaving::let_go(&parent, &spine, module, leaving).await {
                    Ok(None) => return,
                    Ok(Some(again)) => again,
                    Err(error) => {
                        tracing::warn!(reconciler = %spine.setup.key, parent = %display_name(&parent), reason = error.reason(), %error, "letting go of a parent that left the selector failed; retrying");
                        let failed = wait;
                        wait = (wait * 2).min(RETRY_MAX);
                        failed
                    }
                }
            }
            Err(error) => {
                tracing::warn!(reconciler = %spine.setup.key, parent = %name, %error, "could not read a parent that may have left the selector; retrying");
                let failed = wait;
                wait = (wait * 2).min(RETRY_MAX);
                failed
            }
        };
        drop(spine);
        tokio::time::sleep(again).await;
    }
}
