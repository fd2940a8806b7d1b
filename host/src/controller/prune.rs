//! Stage "prune": delete the parent's children that are no longer desired.
//! Only objects carrying this reconciler's labels and owned by this parent
//! are ever deleted.

use std::collections::HashSet;
use std::sync::Arc;

use kube::api::{DeleteParams, DynamicObject, Preconditions};
use serde_json::Value;

use super::apply::{ApplyError, api_for, can_own};
use super::kinds::Kind;
use super::labels::{PARENT_UID, RECONCILER};
use crate::crd::ReconcilerKey;

/// The identity of an object across versions of its kind.
type Identity = (String, String, Option<String>, String);

fn identity(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Identity {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    (
        group.to_string(),
        kind.to_string(),
        namespace.map(str::to_string),
        name.to_string(),
    )
}

/// The observed children of `kind` that `desired` no longer names and that
/// are provably this parent's: labelled by this reconciler for this parent,
/// and (when ownership is possible) controlled by it.
pub fn stale<'a>(
    kind: &Kind,
    observed: &'a [Arc<DynamicObject>],
    desired: &[Value],
    key: &ReconcilerKey,
    parent: &DynamicObject,
    parent_kind: &Kind,
) -> Vec<&'a Arc<DynamicObject>> {
    let parent_uid = parent.metadata.uid.as_deref().unwrap_or_default();
    let wanted: HashSet<Identity> = desired
        .iter()
        .map(|child| {
            identity(
                child["apiVersion"].as_str().unwrap_or_default(),
                child["kind"].as_str().unwrap_or_default(),
                child["metadata"]["namespace"].as_str(),
                child["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let label = key.label_value();
    observed
        .iter()
        .filter(|child| {
            let metadata = &child.metadata;
            let labels = metadata.labels.as_ref();
            let labelled = labels.and_then(|l| l.get(RECONCILER)) == Some(&label)
                && labels.and_then(|l| l.get(PARENT_UID)).map(String::as_str) == Some(parent_uid);
            let controllers: Vec<_> = metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.controller == Some(true))
                .collect();
            // Where ownership is legal it is required; elsewhere the labels
            // are the only link (see `apply::can_own`).
            let owned = if can_own(parent, parent_kind, kind, metadata.namespace.as_deref()) {
                controllers.iter().any(|r| r.uid == parent_uid)
            } else {
                controllers.is_empty()
            };
            let id = identity(
                &kind.resource.api_version,
                &kind.resource.kind,
                metadata.namespace.as_deref(),
                metadata.name.as_deref().unwrap_or_default(),
            );
            labelled && owned && !wanted.contains(&id)
        })
        .collect()
}

/// Deletes `child`, only if it is still the same object (UID precondition);
/// with `dry_run`, only asks whether the API server would accept it.
pub async fn delete(
    client: &kube::Client,
    kind: &Kind,
    child: &DynamicObject,
    dry_run: bool,
) -> Result<(), ApplyError> {
    let name = child.metadata.name.as_deref().unwrap_or_default();
    let namespace = child.metadata.namespace.as_deref();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: child.metadata.uid.clone(),
            resource_version: None,
        }),
        dry_run,
        ..DeleteParams::background()
    };
    match api_for(client, kind, namespace).delete(name, &params).await {
        Ok(_) => Ok(()),
        // Already gone: the goal is reached.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::refusing(kind, namespace, name, dry_run)(source)),
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;
    use serde_json::json;

    use super::*;

    fn config_maps() -> Kind {
        Kind {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap")),
            namespaced: true,
            has_status: false,
        }
    }

    fn child(
        name: &str,
        reconciler: &str,
        parent: &str,
        owner: Option<&str>,
    ) -> Arc<DynamicObject> {
        let owner_refs = owner.map(|uid| {
            json!([{"apiVersion": "example.sous.dev/v1", "kind": "MyApp", "name": "p", "uid": uid, "controller": true}])
        });
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": name, "namespace": "shop",
                    "labels": {RECONCILER: reconciler, PARENT_UID: parent},
                    "ownerReferences": owner_refs,
                },
            }))
            .unwrap(),
        )
    }

    #[test]
    fn only_undesired_children_of_this_parent_and_reconciler_are_stale() {
        let key = ReconcilerKey::namespaced("shop", "r");
        // In another namespace no ownerReference is possible: the labels decide.
        let mut elsewhere = (*child("elsewhere", "shop.r", "p1", None)).clone();
        elsewhere.metadata.namespace = Some("other".into());
        let elsewhere = Arc::new(elsewhere);
        let observed = vec![
            child("kept", "shop.r", "p1", Some("p1")),
            child("dropped", "shop.r", "p1", Some("p1")),
            child("other-reconciler", "shop.other", "p1", Some("p1")),
            child("other-parent", "shop.r", "p2", Some("p2")),
            child("not-owned", "shop.r", "p1", Some("someone-else")),
            child("no-owner", "shop.r", "p1", None),
            elsewhere,
        ];
        let desired = vec![json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kept", "namespace": "shop"},
        })];
        let parent: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "p", "namespace": "shop", "uid": "p1"},
        }))
        .unwrap();
        let parent_kind = Kind {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk(
                "example.sous.dev",
                "v1",
                "MyApp",
            )),
            namespaced: true,
            has_status: true,
        };
        let stale: Vec<_> = stale(
            &config_maps(),
            &observed,
            &desired,
            &key,
            &parent,
            &parent_kind,
        )
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
        assert_eq!(stale, ["dropped", "elsewhere"]);
    }
}
