//! The owned children of every parent, indexed by the parent's UID as the
//! child watchers report them, so observing a parent's children never scans
//! a store or asks the API server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, ObjectMeta};
use kube::runtime::watcher::Event;
use tokio::sync::watch;

use super::apply::APPLIED_HASH;
use super::labels::PARENT_UID;

/// `namespace/name` of a child within its kind.
type ChildName = (Option<String>, String);

/// The children of one kind, grouped by the UID in their `sous.dev/parent-uid` label.
pub struct ChildIndex {
    state: Mutex<IndexState>,
    ready: watch::Sender<bool>,
}

#[derive(Default)]
struct IndexState {
    by_parent: HashMap<String, BTreeMap<ChildName, Arc<DynamicObject>>>,
    parent_of: HashMap<ChildName, String>,
    relisting: Option<Vec<DynamicObject>>,
}

impl Default for ChildIndex {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            ready: watch::Sender::new(false),
        }
    }
}

impl ChildIndex {
    /// Applies one watcher event and returns the children whose change
    /// should trigger their parent's pass: those applied or deleted by a
    /// watch event, and after a relist those new, changed or gone since the
    /// last view. The first listing triggers nothing: every parent gets a
    /// pass when the controller starts anyway, and those passes wait for
    /// this index to be ready.
    pub fn apply(&self, event: &Event<DynamicObject>) -> Vec<DynamicObject> {
        let mut state = self.state.lock().expect("child index lock");
        match event {
            Event::Apply(object) => {
                state.upsert(object.clone());
                vec![object.clone()]
            }
            Event::Delete(object) => {
                state.remove(&name_of(object));
                vec![object.clone()]
            }
            Event::Init => {
                state.relisting = Some(Vec::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                state
                    .relisting
                    .get_or_insert_with(Vec::new)
                    .push(object.clone());
                Vec::new()
            }
            Event::InitDone => {
                let listed = state.relisting.take().unwrap_or_default();
                let first = !*self.ready.borrow();
                let changed = if first {
                    Vec::new()
                } else {
                    state.changes(&listed)
                };
                state.by_parent.clear();
                state.parent_of.clear();
                for object in listed {
                    state.upsert(object);
                }
                drop(state);
                self.ready.send_replace(true);
                changed
            }
        }
    }

    /// Waits until the first complete listing has been indexed.
    pub async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// The children labelled with `parent_uid`, in name order.
    pub fn children_of(&self, parent_uid: &str) -> Vec<Arc<DynamicObject>> {
        let state = self.state.lock().expect("child index lock");
        state
            .by_parent
            .get(parent_uid)
            .map(|children| children.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl IndexState {
    /// What a relist that found `listed` changed: children new or of
    /// another version, and children no longer there.
    fn changes(&self, listed: &[DynamicObject]) -> Vec<DynamicObject> {
        let mut previous: HashMap<ChildName, &Arc<DynamicObject>> = self
            .by_parent
            .values()
            .flat_map(|children| children.iter().map(|(name, object)| (name.clone(), object)))
            .collect();
        let mut changed: Vec<DynamicObject> = listed
            .iter()
            .filter(|object| {
                let before = previous.remove(&name_of(object));
                before.is_none_or(|before| {
                    before.metadata.resource_version != object.metadata.resource_version
                })
            })
            .cloned()
            .collect();
        changed.extend(previous.into_values().map(|gone| (**gone).clone()));
        changed
    }

    fn upsert(&mut self, object: DynamicObject) {
        let name = name_of(&object);
        self.remove(&name);
        let Some(uid) = object
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(PARENT_UID))
            .cloned()
        else {
            return;
        };
        self.by_parent
            .entry(uid.clone())
            .or_default()
            .insert(name.clone(), Arc::new(object));
        self.parent_of.insert(name, uid);
    }

    fn remove(&mut self, name: &ChildName) {
        let Some(uid) = self.parent_of.remove(name) else {
            return;
        };
        if let Some(children) = self.by_parent.get_mut(&uid) {
            children.remove(name);
            if children.is_empty() {
                self.by_parent.remove(&uid);
            }
        }
    }
}

fn name_of(object: &DynamicObject) -> ChildName {
    (
        object.metadata.namespace.clone(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// Writes remembered at most; beyond, the memory is cleared (costing at most
/// one extra pass per forgotten write).
const MAX_OWN_WRITES: usize = 10_000;

/// How long a write is remembered: its watch event comes within moments, or
/// never (a write the API server found to change nothing).
const OWN_WRITE_TTL: Duration = Duration::from_secs(30);

/// A write of one child: its kind, namespace, name and the hash of what was
/// applied (the `sous.dev/applied-hash` annotation every write carries).
type Write = (String, Option<String>, String, String);

/// Writes the host is making, so the watch events they cause do not trigger
/// another pass of the parent that wrote them. A write is recorded *before*
/// its request goes out, because its watch event may arrive before the
/// response; each write suppresses one event of an object carrying its
/// applied hash.
#[derive(Default)]
pub struct OwnWrites {
    // Bounded in size and time: an event that never comes (superseded during
    // a relist, or a write that changed nothing) must not keep its entry.
    written: Mutex<HashMap<Write, Instant>>,
}

impl OwnWrites {
    /// Remembers that the host is about to write (apply or delete) the
    /// object of `kind` whose metadata is `metadata`, stamped with its
    /// applied hash.
    pub fn record(&self, kind: &str, metadata: &ObjectMeta) {
        let Some(write) = write_of(kind, metadata) else {
            return;
        };
        let mut written = self.written.lock().expect("own writes lock");
        if written.len() >= MAX_OWN_WRITES {
            written.retain(|_, at| at.elapsed() < OWN_WRITE_TTL);
            if written.len() >= MAX_OWN_WRITES {
                written.clear();
            }
        }
        written.insert(write, Instant::now());
    }

    /// Forgets a write whose event will not come (the object did not change).
    pub fn forget(&self, kind: &str, metadata: &ObjectMeta) {
        if let Some(write) = write_of(kind, metadata) {
            self.written.lock().expect("own writes lock").remove(&write);
        }
    }

    /// Whether `object`'s event is one of the host's own recent writes
    /// (forgetting it: each write suppresses one event).
    pub fn is_own(&self, kind: &str, object: &DynamicObject) -> bool {
        let Some(write) = write_of(kind, &object.metadata) else {
            return false;
        };
        let mut written = self.written.lock().expect("own writes lock");
        written
            .remove(&write)
            .is_some_and(|at| at.elapsed() < OWN_WRITE_TTL)
    }
}

fn write_of(kind: &str, metadata: &ObjectMeta) -> Option<Write> {
    let hash = metadata.annotations.as_ref()?.get(APPLIED_HASH)?;
    Some((
        kind.to_string(),
        metadata.namespace.clone(),
        metadata.name.clone()?,
        hash.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;
    use serde_json::json;

    use super::*;

    fn child(name: &str, parent: Option<&str>, version: &str) -> DynamicObject {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
        let mut object = DynamicObject::new(name, &resource).within("shop");
        object.metadata.uid = Some(format!("uid-{name}"));
        object.metadata.resource_version = Some(version.into());
        if let Some(parent) = parent {
            object.metadata.labels = Some([(PARENT_UID.to_string(), parent.to_string())].into());
        }
        object.data = json!({});
        object
    }

    fn names(index: &ChildIndex, parent: &str) -> Vec<String> {
        index
            .children_of(parent)
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn children_are_found_by_parent_uid_and_follow_updates_and_deletes() {
        let index = ChildIndex::default();
        index.apply(&Event::Apply(child("a", Some("p1"), "1")));
        index.apply(&Event::Apply(child("b", Some("p1"), "1")));
        index.apply(&Event::Apply(child("c", Some("p2"), "1")));
        index.apply(&Event::Apply(child("d", None, "1")));
        assert_eq!(names(&index, "p1"), ["a", "b"]);
        assert_eq!(names(&index, "p2"), ["c"]);
        // Relabelled to another parent: moves.
        index.apply(&Event::Apply(child("b", Some("p2"), "2")));
        assert_eq!(names(&index, "p1"), ["a"]);
        assert_eq!(names(&index, "p2"), ["b", "c"]);
        // Label removed: no longer anyone's child.
        index.apply(&Event::Apply(child("a", None, "3")));
        assert!(names(&index, "p1").is_empty());
        index.apply(&Event::Delete(child("c", Some("p2"), "4")));
        assert_eq!(names(&index, "p2"), ["b"]);
    }

    #[tokio::test]
    async fn a_relist_replaces_everything_and_marks_the_index_ready() {
        let index = ChildIndex::default();
        index.apply(&Event::Apply(child("gone", Some("p1"), "1")));
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(child("kept", Some("p1"), "2")));
        // Until the relist completes, the old view stays.
        assert_eq!(names(&index, "p1"), ["gone"]);
        index.apply(&Event::InitDone);
        assert_eq!(names(&index, "p1"), ["kept"]);
        tokio::time::timeout(std::time::Duration::from_secs(1), index.ready())
            .await
            .expect("ready after the first listing");
    }

    fn stamped(name: &str, hash: &str, version: &str) -> DynamicObject {
        let mut object = child(name, Some("p1"), version);
        object.metadata.annotations = Some([(APPLIED_HASH.to_string(), hash.to_string())].into());
        object
    }

    #[test]
    fn an_own_write_is_recognised_once_by_its_hash_even_before_its_response() {
        let writes = OwnWrites::default();
        // Recorded from the desired object, before any version exists.
        let desired = stamped("a", "h1", "");
        writes.record("ConfigMap", &desired.metadata);
        assert!(
            !writes.is_own("Secret", &stamped("a", "h1", "7")),
            "another kind"
        );
        assert!(
            !writes.is_own("ConfigMap", &stamped("a", "h0", "7")),
            "another hash"
        );
        assert!(writes.is_own("ConfigMap", &stamped("a", "h1", "7")));
        assert!(
            !writes.is_own("ConfigMap", &stamped("a", "h1", "8")),
            "once only"
        );
        writes.record("ConfigMap", &desired.metadata);
        writes.forget("ConfigMap", &desired.metadata);
        assert!(
            !writes.is_own("ConfigMap", &stamped("a", "h1", "9")),
            "forgotten"
        );
        assert!(
            !writes.is_own("ConfigMap", &child("b", None, "1")),
            "unstamped"
        );
    }

    #[test]
    fn only_a_relist_after_the_first_triggers_and_only_for_what_changed() {
        let index = ChildIndex::default();
        let listing = |objects: Vec<DynamicObject>| {
            let mut triggered = index.apply(&Event::Init);
            for object in objects {
                triggered.extend(index.apply(&Event::InitApply(object)));
            }
            triggered.extend(index.apply(&Event::InitDone));
            let mut names: Vec<String> = triggered
                .iter()
                .map(|c| c.metadata.name.clone().unwrap())
                .collect();
            names.sort();
            names
        };
        let first = listing(vec![
            child("same", Some("p1"), "1"),
            child("gone", Some("p1"), "1"),
        ]);
        assert!(first.is_empty(), "{first:?}");
        let again = listing(vec![
            child("same", Some("p1"), "1"),
            child("new", Some("p1"), "1"),
        ]);
        assert_eq!(again, ["gone", "new"]);
        let changed = listing(vec![
            child("same", Some("p1"), "2"),
            child("new", Some("p1"), "1"),
        ]);
        assert_eq!(changed, ["same"]);
        assert_eq!(
            index
                .apply(&Event::Apply(child("x", Some("p2"), "1")))
                .len(),
            1
        );
    }
}
