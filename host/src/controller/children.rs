//! The owned children of every parent, indexed by the parent's UID as the
//! child watchers report them, so observing a parent's children never scans
//! a store or asks the API server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use tokio::sync::watch;

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
    /// Applies one watcher event.
    pub fn apply(&self, event: &Event<DynamicObject>) {
        let mut state = self.state.lock().expect("child index lock");
        match event {
            Event::Apply(object) => state.upsert(object.clone()),
            Event::Delete(object) => state.remove(&name_of(object)),
            Event::Init => state.relisting = Some(Vec::new()),
            Event::InitApply(object) => state
                .relisting
                .get_or_insert_with(Vec::new)
                .push(object.clone()),
            Event::InitDone => {
                let listed = state.relisting.take().unwrap_or_default();
                state.by_parent.clear();
                state.parent_of.clear();
                for object in listed {
                    state.upsert(object);
                }
                drop(state);
                self.ready.send_replace(true);
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

/// Resource versions the host itself just wrote, so the watch events they
/// cause do not trigger another pass of the parent that wrote them.
#[derive(Default)]
pub struct OwnWrites {
    // Bounded: an event the watch never delivers (e.g. superseded during a
    // relist) must not keep its entry forever.
    written: Mutex<HashSet<(String, String)>>,
}

impl OwnWrites {
    /// Remembers that the host wrote `object` (as returned by the API server).
    pub fn record(&self, object: &DynamicObject) {
        if let (Some(uid), Some(version)) =
            (&object.metadata.uid, &object.metadata.resource_version)
        {
            let mut written = self.written.lock().expect("own writes lock");
            if written.len() >= MAX_OWN_WRITES {
                written.clear();
            }
            written.insert((uid.clone(), version.clone()));
        }
    }

    /// Whether `object` is exactly what the host last wrote (forgetting it:
    /// each write suppresses one event).
    pub fn is_own(&self, object: &DynamicObject) -> bool {
        match (&object.metadata.uid, &object.metadata.resource_version) {
            (Some(uid), Some(version)) => self
                .written
                .lock()
                .expect("own writes lock")
                .remove(&(uid.clone(), version.clone())),
            _ => false,
        }
    }
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

    #[test]
    fn an_own_write_is_recognised_once() {
        let writes = OwnWrites::default();
        let written = child("a", Some("p1"), "7");
        writes.record(&written);
        assert!(!writes.is_own(&child("a", Some("p1"), "8")));
        assert!(writes.is_own(&written));
        assert!(!writes.is_own(&written));
    }
}
