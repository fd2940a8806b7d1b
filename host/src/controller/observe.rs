//! Stage "observe": the parent, its children and its related objects, read
//! from the watch caches (never from the API server), as the guest sees them.

use std::sync::Arc;

use kube::api::DynamicObject;
use kube::runtime::reflector::Store;
use serde_json::Value;

use super::children::ChildIndex;
use super::kinds::Kind;
use crate::crd::RelatedKind;
use crate::render::Observed;

/// One child kind and the index of its objects.
pub struct ChildKind {
    /// The kind.
    pub kind: Kind,
    /// Its objects by parent UID.
    pub index: Arc<ChildIndex>,
}

/// One related kind, its selection and the cache of its objects.
pub struct RelatedSource {
    /// The kind.
    pub kind: Kind,
    /// Which objects to pass.
    pub selection: RelatedKind,
    /// The watch cache (already restricted by the label selector).
    pub store: Store<DynamicObject>,
}

/// What one pass observed.
pub struct Observation {
    /// As the guest will see it.
    pub observed: Observed,
    /// The parent's children, per child kind (same order as the kinds).
    pub children: Vec<Vec<Arc<DynamicObject>>>,
}

/// Gathers everything the guest is shown for `parent`.
pub fn observe(
    parent: &DynamicObject,
    children: &[ChildKind],
    related: &[RelatedSource],
    config: Option<&Value>,
) -> Observation {
    let uid = parent.metadata.uid.as_deref().unwrap_or_default();
    let owned: Vec<Vec<Arc<DynamicObject>>> = children
        .iter()
        .map(|child| child.index.children_of(uid))
        .collect();
    let parent_namespace = parent.metadata.namespace.as_deref();
    let related = related
        .iter()
        .filter(|source| !source.selection.on_request)
        .flat_map(|source| selected(source, parent_namespace))
        .collect();
    Observation {
        observed: Observed {
            parent: as_json(parent),
            children: owned.iter().flatten().map(|child| as_json(child)).collect(),
            related,
            config: config.cloned(),
            desired: None,
        },
        children: owned,
    }
}

/// The objects of `source` its selection passes to a parent in
/// `parent_namespace`, as JSON.
pub fn selected<'a>(
    source: &'a RelatedSource,
    parent_namespace: Option<&'a str>,
) -> impl Iterator<Item = Value> + 'a {
    source
        .store
        .state()
        .into_iter()
        .filter(move |object| {
            let metadata = &object.metadata;
            source.selection.selects(
                source.kind.namespaced,
                parent_namespace,
                (metadata.namespace.as_deref(), metadata.name.as_deref()),
            )
        })
        .map(|object| as_json(&object))
}

/// The object as JSON, without `managedFields` (bookkeeping of the API
/// server that no reconciler needs and that would dominate the request).
fn as_json(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).expect("objects serialize");
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    value
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;
    use crate::controller::labels::PARENT_UID;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_guest_sees_its_own_children_without_managed_fields() {
        let parent = object(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "web", "namespace": "shop", "uid": "p1",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"replicas": 2},
        }));
        let index = Arc::new(ChildIndex::default());
        for (name, parent_uid) in [("mine", "p1"), ("theirs", "p2")] {
            index.apply(&Event::Apply(object(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "shop", "labels": {PARENT_UID: parent_uid}},
            }))));
        }
        let kind = Kind {
            resource: kube::api::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                "", "v1", "Service",
            )),
            namespaced: true,
            has_status: true,
        };
        let children = [ChildKind { kind, index }];
        let observation = observe(&parent, &children, &[], Some(&json!({"tier": "gold"})));
        assert!(
            observation.observed.parent["metadata"]
                .get("managedFields")
                .is_none()
        );
        assert_eq!(observation.observed.parent["spec"]["replicas"], 2);
        assert_eq!(observation.observed.children.len(), 1);
        assert_eq!(observation.observed.children[0]["metadata"]["name"], "mine");
        assert_eq!(observation.children[0].len(), 1);
        assert_eq!(observation.observed.config.unwrap()["tier"], "gold");
    }

    #[test]
    fn related_objects_are_those_of_the_parents_namespace_unless_one_is_named() {
        let resource = kube::api::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        ));
        let mut writer = kube::runtime::reflector::store::Writer::new(resource.clone());
        for (name, namespace) in [("here", "shop"), ("there", "other"), ("shared", "platform")] {
            writer.apply_watcher_event(&Event::Apply(object(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace},
            }))));
        }
        let kind = Kind {
            resource,
            namespaced: true,
            has_status: true,
        };
        let source = |namespace: Option<&str>| RelatedSource {
            kind: kind.clone(),
            selection: RelatedKind {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: namespace.map(str::to_string),
                name: None,
                selector: None,
                match_labels: Default::default(),
                on_request: false,
            },
            store: writer.as_reader(),
        };
        let parent = object(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "ImagePolicy",
            "metadata": {"name": "p", "namespace": "shop", "uid": "p1"},
        }));
        let names = |related: &[RelatedSource]| -> Vec<Value> {
            observe(&parent, &[], related, None)
                .observed
                .related
                .iter()
                .map(|o| o["metadata"]["name"].clone())
                .collect()
        };
        assert_eq!(names(&[source(None)]), [json!("here")]);
        assert_eq!(names(&[source(Some("platform"))]), [json!("shared")]);
    }
}
