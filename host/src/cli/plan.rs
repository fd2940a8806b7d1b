//! `sous render --plan`: the writes the host would make for a rendered
//! answer, offline. The observed children given to `render` are taken as
//! this reconciler's own, as the host last applied them; each child kind
//! follows its rules from a Reconciler manifest (`--reconciler`: update
//! strategy, delete policy), else the defaults. Kinds are scoped with
//! Kubernetes' built-in cluster-scoped kinds standing in for discovery.

use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject};
use serde::Serialize;
use serde_json::Value;

use super::policy::builtin_cluster_scoped;
use crate::controller::apply::{self, Owner};
use crate::controller::kinds::Kind;
use crate::controller::plan::{self, ChildKinds, Step};
use crate::crd::{ChildSpec, ReconcilerKey, TypeMeta};
use crate::validate::TypeRef;

/// One line of an offline plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedWrite {
    /// `create`, `update`, `recreate`, `hold`, `delete` or `release`.
    pub action: &'static str,
    /// `Kind namespace/name`.
    pub child: String,
    /// Why, for a held child.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The key of reconciler `name` serving `parent` when no manifest names it:
/// a Reconciler of the parent's namespace, else a ClusterReconciler.
pub fn key_for(name: &str, parent: &Value) -> ReconcilerKey {
    match parent["metadata"]["namespace"].as_str() {
        Some(namespace) => ReconcilerKey::namespaced(namespace, name),
        None => ReconcilerKey::cluster(name),
    }
}

/// The writes that make `observed` (taken as `key`'s children of `parent`)
/// equal to `desired` under `rules` (the `spec.children` entries; kinds met
/// in `desired` or `observed` but not listed get the default rules).
pub fn offline_plan(
    key: &ReconcilerKey,
    parent: &Value,
    rules: &[ChildSpec],
    observed: &[Value],
    desired: &[Value],
) -> anyhow::Result<Vec<PlannedWrite>> {
    let mut rules = rules.to_vec();
    for object in observed.iter().chain(desired) {
        let type_meta = TypeMeta::of_object(object);
        if !rules.iter().any(|rule| rule.type_meta() == type_meta) {
            rules.push(ChildSpec::of(type_meta));
        }
    }
    let cluster_scoped = builtin_cluster_scoped();
    let kind_of = |type_meta: &TypeMeta| {
        let type_ref = TypeRef::from(type_meta);
        Kind {
            resource: ApiResource::from_gvk(&type_meta.gvk()),
            namespaced: !cluster_scoped.iter().any(|c| c.same_resource(&type_ref)),
            has_status: false,
        }
    };
    let kinds: Vec<Kind> = rules
        .iter()
        .map(|rule| kind_of(&rule.type_meta()))
        .collect();
    let child_kinds = ChildKinds {
        kinds: &kinds,
        rules: &rules,
    };
    let parent_object: DynamicObject = serde_json::from_value(parent.clone())?;
    let parent_kind = kind_of(&TypeMeta::of_object(parent));
    let owner = Owner {
        parent: &parent_object,
        kind: &parent_kind,
        key,
    };
    let mut by_kind: Vec<Vec<Arc<DynamicObject>>> = vec![Vec::new(); kinds.len()];
    for object in observed {
        let position = child_kinds
            .position(object)
            .expect("every observed kind has rules");
        // As the host would hold it after applying it: stamped as its own.
        let mut stamped = object.clone();
        if stamped["metadata"]["namespace"].is_null()
            && kinds[position].namespaced
            && let Some(namespace) = parent["metadata"]["namespace"].as_str()
        {
            stamped["metadata"]["namespace"] = Value::from(namespace);
        }
        apply::stamp(&mut stamped, &kinds[position], &owner);
        by_kind[position].push(Arc::new(serde_json::from_value(stamped)?));
    }
    let child_kinds = ChildKinds {
        kinds: &kinds,
        rules: &rules,
    };
    let plan = plan::plan(child_kinds, &by_kind, desired, &owner)?;
    let mut writes: Vec<PlannedWrite> = plan
        .steps
        .iter()
        .map(|step| PlannedWrite {
            action: match step {
                Step::Apply { before: None, .. } => "create",
                Step::Apply { .. } => "update",
                Step::Recreate { .. } => "recreate",
                Step::Prune { .. } => "delete",
                Step::Release { .. } => "release",
            },
            child: step.describe(&kinds[step.kind()]),
            why: None,
        })
        .collect();
    writes.extend(plan.held.iter().map(|held| PlannedWrite {
        action: "hold",
        child: held.child.clone(),
        why: Some(held.to_string()),
    }));
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config_map(name: &str, value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop"}, "data": {"v": value}})
    }

    #[test]
    fn the_plan_follows_each_kinds_rules() {
        let parent = json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "p", "namespace": "shop", "uid": "u1"},
        });
        let rules: Vec<ChildSpec> = serde_json::from_value(json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "updateStrategy": {"method": "Recreate"}, "deletePolicy": "Orphan"},
            {"apiVersion": "v1", "kind": "Secret", "updateStrategy": {"method": "OnDelete"}},
        ]))
        .unwrap();
        let secret = |value: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"}, "stringData": {"v": value}});
        let observed = [
            config_map("same", "1"),
            config_map("changed", "1"),
            config_map("gone", "1"),
            secret("1"),
        ];
        let desired = [
            config_map("same", "1"),
            config_map("changed", "2"),
            config_map("new", "1"),
            secret("2"),
        ];
        let key = ReconcilerKey::namespaced("shop", "r");
        let writes = offline_plan(&key, &parent, &rules, &observed, &desired).unwrap();
        let summary: Vec<(&str, &str)> = writes
            .iter()
            .map(|write| (write.action, write.child.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("recreate", "ConfigMap shop/changed"),
                ("create", "ConfigMap shop/new"),
                ("release", "ConfigMap shop/gone"),
                ("hold", "Secret shop/s"),
            ]
        );
        assert!(writes[3].why.as_deref().unwrap().contains("OnDelete"));
        // Without rules: in place, and deleted.
        let writes = offline_plan(&key, &parent, &[], &observed, &desired).unwrap();
        let actions: Vec<&str> = writes.iter().map(|write| write.action).collect();
        assert_eq!(actions, ["update", "create", "update", "delete"]);
    }
}
