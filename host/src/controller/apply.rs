//! Stage "apply": stamp ownership on every desired child and server-side
//! apply the ones that differ from what is observed.

use std::sync::Arc;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::kinds::Kind;
use super::labels::{PARENT_UID, RECONCILER};
use crate::crd::ReconcilerKey;

/// Annotation holding the hash of what the host last applied, so an
/// unchanged desired child costs no API call.
pub const APPLIED_HASH: &str = "sous.dev/applied-hash";

/// The parent as its children's owner.
pub struct Owner<'a> {
    /// The parent object.
    pub parent: &'a DynamicObject,
    /// The parent's kind.
    pub kind: &'a Kind,
    /// The reconciler writing.
    pub key: &'a ReconcilerKey,
}

/// Adds the host's labels, the controller ownerReference and the applied
/// hash to a desired child.
pub fn stamp(child: &mut Value, child_kind: &Kind, owner: &Owner) {
    let uid = owner.parent.metadata.uid.clone().unwrap_or_default();
    let metadata = child["metadata"]
        .as_object_mut()
        .expect("validated children have metadata");
    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[RECONCILER] = Value::from(owner.key.label_value());
    labels[PARENT_UID] = Value::from(uid.clone());
    let child_namespace = metadata.get("namespace").and_then(Value::as_str);
    let may_own = can_own(owner.parent, owner.kind, child_kind, child_namespace);
    let guest_refs = metadata
        .remove("ownerReferences")
        .and_then(|refs| refs.as_array().cloned())
        .unwrap_or_default();
    let mut refs: Vec<Value> = guest_refs
        .into_iter()
        .filter(|r| r["controller"] != true && r["uid"] != uid.as_str())
        .collect();
    if may_own {
        refs.push(json!({
            "apiVersion": owner.kind.resource.api_version,
            "kind": owner.kind.resource.kind,
            "name": owner.parent.metadata.name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }));
    }
    if !refs.is_empty() {
        metadata.insert("ownerReferences".into(), Value::Array(refs));
    }
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(APPLIED_HASH);
    }
    let hash = hash_of(child);
    let annotations = child["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[APPLIED_HASH] = Value::from(hash);
}

/// Whether an ownerReference from a child to the parent is legal: a
/// namespaced parent can only own children of its own namespace (the garbage
/// collector deletes a namespaced child owned across namespaces, and never
/// collects a cluster-scoped child owned by a namespaced parent). Children
/// that cannot be owned are found, pruned and finalized by their labels.
pub fn can_own(
    parent: &DynamicObject,
    parent_kind: &Kind,
    child_kind: &Kind,
    child_namespace: Option<&str>,
) -> bool {
    !parent_kind.namespaced
        || (child_kind.namespaced && child_namespace == parent.metadata.namespace.as_deref())
}

fn hash_of(value: &Value) -> String {
    let text = serde_json::to_string(value).expect("JSON values serialize");
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Whether `observed` already is `desired`: the host applied this very
/// object last time and every desired field still holds its value (a field
/// someone else changed counts as drift and is applied again).
pub fn is_current(observed: &DynamicObject, desired: &Value) -> bool {
    applied_last(observed, desired) && holds(observed, desired)
}

/// Whether `observed` is what the host applied last time for `desired`, but
/// someone else has changed a field it sets since (drift).
pub fn drifted(observed: &DynamicObject, desired: &Value) -> bool {
    applied_last(observed, desired) && !holds(observed, desired)
}

/// Whether the host's last write of `observed` applied `desired` (same hash).
fn applied_last(observed: &DynamicObject, desired: &Value) -> bool {
    let applied = observed
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(APPLIED_HASH));
    applied.map(String::as_str) == desired["metadata"]["annotations"][APPLIED_HASH].as_str()
}

/// Whether every field of `desired` holds its value in `observed`.
pub fn holds(observed: &DynamicObject, desired: &Value) -> bool {
    let observed = serde_json::to_value(observed).expect("objects serialize");
    contains(&observed, desired)
}

/// The field manager other than `ours` that changed `object` last (not its
/// status, which the guest does not set), as its `managedFields` tell.
pub fn changed_by(object: &DynamicObject, ours: &str) -> Option<String> {
    object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.as_deref().unwrap_or_default().is_empty())
        .filter(|entry| entry.manager.as_deref().is_some_and(|m| m != ours))
        .max_by_key(|entry| entry.time.as_ref().map(|time| time.0))
        .and_then(|entry| entry.manager.clone())
}

/// `actual` holds every field of `wanted` with the same value; lists must
/// match element by element (the API server adds defaults inside them).
fn contains(actual: &Value, wanted: &Value) -> bool {
    match (actual, wanted) {
        (Value::Object(actual), Value::Object(wanted)) => wanted
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|a| contains(a, value))),
        (Value::Array(actual), Value::Array(wanted)) => {
            actual.len() == wanted.len() && actual.iter().zip(wanted).all(|(a, w)| contains(a, w))
        }
        (actual, wanted) => actual == wanted,
    }
}

/// A write of a child (apply or delete) that the API server refused.
#[derive(Debug, thiserror::Error)]
#[error("{} {child}: {}", if *.dry_run { "the API server would refuse writing" } else { "writing" }, refusal(.source))]
pub struct ApplyError {
    /// The child, as `Kind namespace/name`.
    pub child: String,
    /// Whether the refusal came from the dry run that checks a plan (so
    /// nothing of the plan was written).
    pub dry_run: bool,
    /// The API error (forbidden, invalid...).
    #[source]
    pub source: kube::Error,
}

impl ApplyError {
    /// For `map_err`: the API server's refusal of writing the object
    /// `name` of `kind` in `namespace` (described only if it comes).
    pub fn refusing<'a>(
        kind: &'a Kind,
        namespace: Option<&'a str>,
        name: &'a str,
        dry_run: bool,
    ) -> impl FnOnce(kube::Error) -> Self + 'a {
        move |source| Self {
            child: describe(kind, namespace, name),
            dry_run,
            source,
        }
    }

    /// The refusal as a reason a person understands.
    pub fn reason(&self) -> &'static str {
        let kube::Error::Api(status) = &self.source else {
            return "WriteFailed";
        };
        let message = status.message.to_lowercase();
        match status.code {
            403 if message.contains("exceeded quota") => "QuotaExceeded",
            403 => "Forbidden",
            422 if message.contains("only one reference can have controller set to true") => {
                "ChildControlledElsewhere"
            }
            422 => "Invalid",
            409 => "Conflict",
            404 => "NotFound",
            429 => "Throttled",
            _ => "WriteFailed",
        }
    }
}

/// The API server's refusal in words: its message, without the error's
/// framing.
fn refusal(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

/// Server-side applies one stamped child as `field_manager`, taking over
/// conflicting fields (the guest's answer is the truth for what it sets);
/// with `dry_run`, only asks whether the API server would accept it.
pub async fn apply(
    client: &kube::Client,
    kind: &Kind,
    child: &Value,
    field_manager: &str,
    dry_run: bool,
) -> Result<Arc<DynamicObject>, ApplyError> {
    let (name, namespace) = name_of(child);
    let api = api_for(client, kind, namespace);
    let mut params = PatchParams::apply(field_manager).force();
    params.dry_run = dry_run;
    api.patch(name, &params, &Patch::Apply(child))
        .await
        .map(Arc::new)
        .map_err(ApplyError::refusing(kind, namespace, name, dry_run))
}

/// `metadata.name` and `metadata.namespace` of a desired child (JSON).
pub fn name_of(child: &Value) -> (&str, Option<&str>) {
    (
        child["metadata"]["name"].as_str().unwrap_or_default(),
        child["metadata"]["namespace"].as_str(),
    )
}

/// The API of `kind`, in `namespace` when it is namespaced.
pub fn api_for(client: &kube::Client, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace.filter(|_| kind.namespaced) {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &kind.resource),
        None => Api::all_with(client.clone(), &kind.resource),
    }
}

/// `Kind namespace/name`, for messages.
pub fn describe(kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{} {namespace}/{name}", kind.resource.kind),
        None => format!("{} {name}", kind.resource.kind),
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;

    use super::*;

    fn kind(group: &str, version: &str, name: &str, namespaced: bool) -> Kind {
        Kind {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, name)),
            namespaced,
            has_status: true,
        }
    }

    fn parent() -> DynamicObject {
        let mut parent = DynamicObject::new(
            "web",
            &kind("example.sous.dev", "v1", "MyApp", true).resource,
        )
        .within("shop");
        parent.metadata.uid = Some("p-uid".into());
        parent
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "other", "controller": true}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
        })
    }

    /// `child` stamped as a child of the MyApp `shop/web` of `shop/my-app`.
    fn stamp_for_web(mut child: Value, child_kind: &Kind) -> Value {
        let parent = parent();
        let key = ReconcilerKey::namespaced("shop", "my-app");
        let parent_kind = kind("example.sous.dev", "v1", "MyApp", true);
        let owner = Owner {
            parent: &parent,
            kind: &parent_kind,
            key: &key,
        };
        stamp(&mut child, child_kind, &owner);
        child
    }

    fn stamped() -> Value {
        stamp_for_web(deployment(), &kind("apps", "v1", "Deployment", true))
    }

    #[test]
    fn stamping_sets_labels_the_one_controller_reference_and_a_stable_hash() {
        let child = stamped();
        let metadata = &child["metadata"];
        assert_eq!(metadata["labels"]["app"], "web");
        assert_eq!(metadata["labels"][RECONCILER], "shop.my-app");
        assert_eq!(metadata["labels"][PARENT_UID], "p-uid");
        let refs = metadata["ownerReferences"].as_array().unwrap();
        assert_eq!(
            refs.len(),
            1,
            "the guest's controller reference is replaced"
        );
        assert_eq!(refs[0]["uid"], "p-uid");
        assert_eq!(refs[0]["controller"], true);
        assert_eq!(
            metadata["annotations"][APPLIED_HASH],
            stamped()["metadata"]["annotations"][APPLIED_HASH]
        );
    }

    #[test]
    fn a_namespaced_parent_never_owns_a_cluster_scoped_child() {
        let namespace = stamp_for_web(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
            &kind("", "v1", "Namespace", false),
        );
        assert!(namespace["metadata"].get("ownerReferences").is_none());
        assert_eq!(namespace["metadata"]["labels"][PARENT_UID], "p-uid");
    }

    fn observed(mut value: Value) -> DynamicObject {
        serde_json::from_value(value.take()).unwrap()
    }

    #[test]
    fn an_unchanged_child_with_server_defaults_is_current() {
        let desired = stamped();
        let mut live = desired.clone();
        live["metadata"]["resourceVersion"] = json!("12");
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        live["status"] = json!({"replicas": 2});
        assert!(is_current(&observed(live), &desired));
    }

    #[test]
    fn drift_or_a_new_desired_state_is_not_current() {
        let desired = stamped();
        let mut edited = desired.clone();
        edited["spec"]["replicas"] = json!(5);
        assert!(!is_current(&observed(edited), &desired), "drift");
        let mut extra = desired.clone();
        extra["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar"}));
        assert!(!is_current(&observed(extra), &desired), "list length");
        let mut other_hash = desired.clone();
        other_hash["metadata"]["annotations"][APPLIED_HASH] = json!("older");
        assert!(!is_current(&observed(other_hash), &desired), "new intent");
    }
}
