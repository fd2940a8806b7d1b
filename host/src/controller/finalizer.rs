//! The host's finalizers: `sous.dev/finalizer` on parents (added while a
//! parent lives, removed once the guest's `finalize` answered done), and
//! `sous.dev/release-parents` on the Reconcilers that put it there.

use kube::api::{DynamicObject, ObjectMeta, Patch, PatchParams};
use serde_json::json;

use super::apply::api_for;
use super::kinds::Kind;

/// Whether the object of `metadata` carries finalizer `name`.
pub fn has(metadata: &ObjectMeta, name: &str) -> bool {
    metadata.finalizers.iter().flatten().any(|f| f == name)
}

/// Whether `parent` is being deleted.
pub fn deleting(parent: &DynamicObject) -> bool {
    parent.metadata.deletion_timestamp.is_some()
}

/// Adds finalizer `name` to `object` of `kind` (a no-op if present).
pub async fn add(
    client: &kube::Client,
    kind: &Kind,
    object: &DynamicObject,
    name: &str,
) -> kube::Result<()> {
    if has(&object.metadata, name) {
        return Ok(());
    }
    let mut finalizers = object.metadata.finalizers.clone().unwrap_or_default();
    finalizers.push(name.to_string());
    set(client, kind, object, finalizers).await
}

/// Removes finalizer `name` from `object` of `kind` (a no-op if absent),
/// letting its deletion complete.
pub async fn remove(
    client: &kube::Client,
    kind: &Kind,
    object: &DynamicObject,
    name: &str,
) -> kube::Result<()> {
    if !has(&object.metadata, name) {
        return Ok(());
    }
    let finalizers = object
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != name)
        .cloned()
        .collect();
    set(client, kind, object, finalizers).await
}

/// Replaces the finalizer list, only if the object did not change meanwhile
/// (the resourceVersion in a merge patch is a precondition).
async fn set(
    client: &kube::Client,
    kind: &Kind,
    parent: &DynamicObject,
    finalizers: Vec<String>,
) -> kube::Result<()> {
    let name = parent.metadata.name.as_deref().unwrap_or_default();
    let api = api_for(client, kind, parent.metadata.namespace.as_deref());
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": parent.metadata.resource_version,
        }
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
}
