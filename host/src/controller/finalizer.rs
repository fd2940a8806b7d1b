//! The `sous.dev/finalizer` on parents: added while a parent lives, removed
//! once the guest's `finalize` answered done.

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::apply::api_for;
use super::kinds::Kind;
use super::labels::FINALIZER;

/// Whether `parent` carries the host's finalizer.
pub fn has(parent: &DynamicObject) -> bool {
    parent
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// Whether `parent` is being deleted.
pub fn deleting(parent: &DynamicObject) -> bool {
    parent.metadata.deletion_timestamp.is_some()
}

/// Adds the finalizer (a no-op if present).
pub async fn add(client: &kube::Client, kind: &Kind, parent: &DynamicObject) -> kube::Result<()> {
    if has(parent) {
        return Ok(());
    }
    let mut finalizers = parent.metadata.finalizers.clone().unwrap_or_default();
    finalizers.push(FINALIZER.to_string());
    set(client, kind, parent, finalizers).await
}

/// Removes the finalizer, letting the deletion complete.
pub async fn remove(
    client: &kube::Client,
    kind: &Kind,
    parent: &DynamicObject,
) -> kube::Result<()> {
    let finalizers = parent
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set(client, kind, parent, finalizers).await
}

/// Replaces the finalizer list, only if the parent did not change meanwhile
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
