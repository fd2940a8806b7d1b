//! Related requests in a cluster: served from the watch caches of the
//! declared related kinds, remembered per parent so that the next pass
//! starts with them (one guest call when nothing changed) and so that a
//! change of a requested object triggers the parents that asked for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;

use super::observe::{self, RelatedSource};
use crate::related::{self, RelatedQuery};
use crate::render::RelatedObjects;

/// The requests each parent's last pass settled on, by parent UID.
#[derive(Default)]
pub struct RequestBook {
    parents: Mutex<HashMap<String, Asked>>,
}

struct Asked {
    parent: ObjectRef<DynamicObject>,
    namespace: Option<String>,
    queries: Vec<RelatedQuery>,
}

impl RequestBook {
    /// Records what `parent`'s pass settled on (nothing: forgets it).
    pub fn record(&self, parent: &DynamicObject, resource: &ApiResource, queries: &[RelatedQuery]) {
        let uid = parent.metadata.uid.clone().unwrap_or_default();
        let mut parents = self.parents.lock().expect("request book lock");
        if queries.is_empty() {
            parents.remove(&uid);
            return;
        }
        parents.insert(
            uid,
            Asked {
                parent: ObjectRef::from_obj_with(parent, resource.clone()),
                namespace: parent.metadata.namespace.clone(),
                queries: queries.to_vec(),
            },
        );
    }

    /// Forgets a parent let go of.
    pub fn forget(&self, uid: &str) {
        self.parents.lock().expect("request book lock").remove(uid);
    }

    /// Forgets the parents `parents` no longer holds (deleted without a
    /// finalizer, so never let go of).
    pub fn forget_gone(&self, parents: &Store<DynamicObject>) {
        self.parents
            .lock()
            .expect("request book lock")
            .retain(|_, asked| parents.get(&asked.parent).is_some());
    }

    /// What `uid` settled on last.
    pub fn settled(&self, uid: &str) -> Vec<RelatedQuery> {
        self.parents
            .lock()
            .expect("request book lock")
            .get(uid)
            .map(|asked| asked.queries.clone())
            .unwrap_or_default()
    }

    /// The parents whose requests select `object` (of a kind that is
    /// `namespaced` or not).
    pub fn parents_asking_for(
        &self,
        object: &Value,
        namespaced: bool,
    ) -> Vec<ObjectRef<DynamicObject>> {
        self.parents
            .lock()
            .expect("request book lock")
            .values()
            .filter(|asked| {
                !related::resolve(
                    &asked.queries,
                    [(object, namespaced)],
                    asked.namespace.as_deref(),
                    &[],
                )
                .is_empty()
            })
            .map(|asked| asked.parent.clone())
            .collect()
    }
}

/// The objects one parent's requests may resolve to: those of the declared
/// related kinds, as each declaration selects them for this parent.
pub struct FromCaches {
    /// The declared related kinds and their caches.
    pub sources: Arc<[RelatedSource]>,
    /// The parent's namespace.
    pub parent_namespace: Option<String>,
    /// What the parent's last pass settled on.
    pub settled: Vec<RelatedQuery>,
}

impl RelatedObjects for FromCaches {
    fn candidates(&self, query: &RelatedQuery) -> Vec<(Value, bool)> {
        let wanted = query.type_ref();
        self.sources
            .iter()
            .filter(|source| source.kind.type_ref().same_resource(&wanted))
            .flat_map(|source| {
                observe::selected(source, self.parent_namespace.as_deref())
                    .map(|object| (object, source.kind.namespaced))
            })
            .collect()
    }

    fn settled(&self) -> Vec<RelatedQuery> {
        self.settled.clone()
    }
}
