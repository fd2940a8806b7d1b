//! Stage "parent metadata": the labels and annotations a guest sets on its
//! parent, server-side applied as complete sets. Labels and annotations each
//! have a field manager of their own (the reconciler's, suffixed), so that
//! answering one and not the other leaves the other as it is, and a key the
//! guest stops returning is removed while keys others set are never touched.

use std::collections::BTreeMap;

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::apply;
use super::kinds::Kind;
use crate::telemetry::{ChildWrite, Metrics};

/// One of the two maps of a parent's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// `metadata.labels`.
    Labels,
    /// `metadata.annotations`.
    Annotations,
}

impl Entries {
    fn field(self) -> &'static str {
        match self {
            Self::Labels => "labels",
            Self::Annotations => "annotations",
        }
    }

    /// This map of `parent`, if it has one.
    fn of(self, parent: &DynamicObject) -> Option<&BTreeMap<String, String>> {
        match self {
            Self::Labels => parent.metadata.labels.as_ref(),
            Self::Annotations => parent.metadata.annotations.as_ref(),
        }
    }

    /// The field manager of this map: the reconciler's, suffixed.
    pub fn manager(self, field_manager: &str) -> String {
        format!("{field_manager}-parent-{}", self.field())
    }
}

/// Writes a parent's labels and annotations.
pub struct ParentMetadata<'a> {
    /// The client writes go through (the reconciler's identity).
    pub client: &'a kube::Client,
    /// The parent's kind.
    pub kind: &'a Kind,
    /// The reconciler's field manager.
    pub field_manager: &'a str,
    /// Where write counts go.
    pub metrics: &'a Metrics,
    /// The reconciler's label in metrics.
    pub label: &'a str,
}

impl ParentMetadata<'_> {
    /// Applies `wanted` as the complete set of `entries` this reconciler sets
    /// on `parent`, unless the parent already carries exactly that (the same
    /// keys owned, each with its value). Returns whether it wrote.
    pub async fn apply(
        &self,
        parent: &DynamicObject,
        entries: Entries,
        wanted: &BTreeMap<String, String>,
    ) -> Result<bool, kube::Error> {
        let manager = entries.manager(self.field_manager);
        if already_set(parent, entries, &manager, wanted) {
            return Ok(false);
        }
        let name = parent.metadata.name.as_deref().unwrap_or_default();
        let api = apply::api_for(self.client, self.kind, parent.metadata.namespace.as_deref());
        let body = json!({
            "apiVersion": self.kind.resource.api_version,
            "kind": self.kind.resource.kind,
            "metadata": {
                "name": name,
                "namespace": parent.metadata.namespace,
                "uid": parent.metadata.uid,
                (entries.field()): wanted,
            },
        });
        // Not forced: a key another manager set to another value is theirs.
        api.patch(name, &PatchParams::apply(&manager), &Patch::Apply(&body))
            .await?;
        self.metrics
            .child_written(self.label, ChildWrite::ParentMetadata);
        Ok(true)
    }
}

/// Whether `parent` carries exactly `wanted` under `manager`: the keys it
/// owns are those wanted, and each holds its wanted value.
fn already_set(
    parent: &DynamicObject,
    entries: Entries,
    manager: &str,
    wanted: &BTreeMap<String, String>,
) -> bool {
    let current = entries.of(parent);
    let values_hold = wanted
        .iter()
        .all(|(key, value)| current.and_then(|c| c.get(key)) == Some(value));
    values_hold && owned_keys(parent, entries, manager) == wanted.keys().collect::<Vec<_>>()
}

/// The keys of `entries` that `manager` owns by apply, sorted, as
/// `managedFields` tell (`f:metadata` / `f:labels` / `f:<key>`).
fn owned_keys<'a>(parent: &'a DynamicObject, entries: Entries, manager: &str) -> Vec<&'a String> {
    let field = format!("f:{}", entries.field());
    let mut keys: Vec<&String> = parent
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|managed| {
            managed.manager.as_deref() == Some(manager)
                && managed.operation.as_deref() == Some("Apply")
        })
        .filter_map(|managed| managed.fields_v1.as_ref())
        .filter_map(|fields| fields.0.get("f:metadata")?.get(&field)?.as_object())
        .flat_map(|owned| owned.keys())
        .filter_map(|key| key.strip_prefix("f:"))
        .filter_map(|key| entries.of(parent)?.get_key_value(key).map(|(key, _)| key))
        .collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn parent(labels: Value, owned: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": "team-a",
                "labels": labels,
                "managedFields": [{
                    "manager": "sous.dev/teams-parent-labels", "operation": "Apply",
                    "apiVersion": "v1", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": owned}},
                }],
            },
        }))
        .unwrap()
    }

    fn wanted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_parent_already_carrying_the_owned_set_needs_no_write() {
        let manager = Entries::Labels.manager("sous.dev/teams");
        assert_eq!(manager, "sous.dev/teams-parent-labels");
        let parent = parent(
            json!({"team": "a", "owner": "someone"}),
            json!({"f:team": {}}),
        );
        assert!(already_set(
            &parent,
            Entries::Labels,
            &manager,
            &wanted(&[("team", "a")])
        ));
        // Another value, one more key, or one key fewer: a write.
        assert!(!already_set(
            &parent,
            Entries::Labels,
            &manager,
            &wanted(&[("team", "b")])
        ));
        assert!(!already_set(
            &parent,
            Entries::Labels,
            &manager,
            &wanted(&[("team", "a"), ("tier", "x")])
        ));
        assert!(!already_set(
            &parent,
            Entries::Labels,
            &manager,
            &wanted(&[])
        ));
        // A key set by someone else is not ours to keep: we must claim it.
        assert!(!already_set(
            &parent,
            Entries::Labels,
            &manager,
            &wanted(&[("team", "a"), ("owner", "someone")])
        ));
    }
}
