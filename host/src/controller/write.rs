//! Stage "write": a pass's plan is checked whole, then executed. First the
//! desired children the caches do not know are looked up, so that no
//! existing object is taken over unless its kind allows adoption. Then
//! every write is sent as a server-side dry run (`dryRun=All`: admission,
//! RBAC, quota, schema and ownership all answer, nothing is stored); one
//! refusal and nothing is written, the parent's condition naming the child
//! and the API server's reason. Then the writes are made, several at once:
//! applies and recreates first, prunes and releases after.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::adopt::{self, Claim};
use super::apply::{self, APPLIED_HASH, ApplyError, api_for, describe};
use super::children::OwnWrites;
use super::kinds::Kind;
use super::labels::{PARENT_UID, RECONCILER};
use super::pass::PassError;
use super::plan::{ChildKinds, Step, WritePlan};
use super::prune;
use crate::crd::ReconcilerKey;
use crate::telemetry::{ChildWrite, Metrics};

/// Writes of one plan in flight at once.
const CONCURRENT_WRITES: usize = 8;
/// How long a recreate waits for the old object to go before it leaves
/// the creation to a later pass.
const RECREATE_WAIT: Duration = Duration::from_secs(10);

/// Where a plan is written.
pub struct Writer<'a> {
    /// The client writes are made with (the reconciler's identity).
    pub client: &'a kube::Client,
    /// The server-side apply field manager.
    pub field_manager: &'a str,
    /// The reconciler's child kinds and their rules (a step names its kind
    /// by index).
    pub kinds: ChildKinds<'a>,
    /// Where writes are recorded so their watch events trigger nothing.
    pub own_writes: &'a OwnWrites,
    /// The reconciler.
    pub reconciler: &'a ReconcilerKey,
    /// The parent's UID.
    pub parent_uid: &'a str,
    /// The parent, as `namespace/name` (for logs).
    pub parent: &'a str,
    /// Where writes are counted.
    pub metrics: &'a Metrics,
}

/// What a written plan did besides applying and pruning, for the parent's
/// events.
#[derive(Debug, Default)]
pub struct Written {
    /// Existing objects adopted as children (`Kind namespace/name`).
    pub adopted: Vec<String>,
    /// Children released (`Kind namespace/name`).
    pub released: Vec<String>,
}

impl Writer<'_> {
    /// Checks that no existing object would be taken over against its
    /// kind's adoption rule, checks every step of `plan` with a dry run,
    /// then, if none is refused, makes them: applies and recreates first,
    /// prunes and releases after, several at once.
    pub async fn write(&self, plan: &WritePlan<'_>) -> Result<Written, PassError> {
        let mut written = Written {
            adopted: self.claims(plan).await?,
            ..Written::default()
        };
        let all: Vec<&Step> = plan.steps.iter().collect();
        self.each(&all, true).await?;
        let (changes, removals): (Vec<&Step>, Vec<&Step>) = all
            .into_iter()
            .partition(|step| matches!(step, Step::Apply { .. } | Step::Recreate { .. }));
        self.each(&changes, false).await?;
        self.each(&removals, false).await?;
        for step in removals {
            if let Step::Release { .. } = step {
                written.released.push(step.describe(self.kind_of(step)));
            }
        }
        let label = self.reconciler.label_value();
        let actions = plan.steps.iter().map(|step| match step {
            Step::Apply { .. } => ChildWrite::Apply,
            Step::Recreate { .. } => ChildWrite::Recreate,
            Step::Prune { .. } => ChildWrite::Prune,
            Step::Release { .. } => ChildWrite::Release,
        });
        let adoptions = written.adopted.iter().map(|_| ChildWrite::Adopt);
        for action in actions.chain(adoptions) {
            self.metrics.child_written(&label, action);
        }
        Ok(written)
    }

    /// Looks up every desired child the caches do not show (an apply with
    /// nothing observed) and applies its kind's adoption rule; returns the
    /// objects to be adopted.
    async fn claims(&self, plan: &WritePlan<'_>) -> Result<Vec<String>, PassError> {
        let creations: Vec<_> = plan
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Apply {
                    kind,
                    child,
                    before: None,
                    ..
                } => Some(self.claim(*kind, child)),
                _ => None,
            })
            .collect();
        let claims: Vec<Option<String>> = stream::iter(creations)
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect()
            .await?;
        Ok(claims.into_iter().flatten().collect())
    }

    /// The adoption rule for one desired child: `Some(child)` when it is
    /// adopted.
    async fn claim(&self, position: usize, child: &Value) -> Result<Option<String>, PassError> {
        let kind = &self.kinds.kinds[position];
        let (name, namespace) = apply::name_of(child);
        let existing = api_for(self.client, kind, namespace)
            .get_metadata_opt(name)
            .await
            .map_err(ApplyError::refusing(kind, namespace, name, true))?;
        let described = describe(kind, namespace, name);
        let adopt = self
            .kinds
            .rules
            .get(position)
            .map(|rules| rules.adopt)
            .unwrap_or_default();
        let claim = adopt::claim(
            existing.as_ref().map(|object| &object.metadata),
            &described,
            &self.reconciler.label_value(),
            self.parent_uid,
            adopt,
        )
        .map_err(PassError::Claim)?;
        Ok((claim == Claim::Adopt).then_some(described))
    }

    async fn each(&self, steps: &[&Step<'_>], dry_run: bool) -> Result<(), ApplyError> {
        // Collected first: a lazily mapped iterator here makes the pass's
        // future lose `Send` (a higher-ranked lifetime the compiler cannot
        // prove).
        let writes: Vec<_> = steps.iter().map(|step| self.step(step, dry_run)).collect();
        stream::iter(writes)
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect()
            .await
    }

    async fn step(&self, step: &Step<'_>, dry_run: bool) -> Result<(), ApplyError> {
        let kind = self.kind_of(step);
        match step {
            Step::Apply { child, before, .. } => {
                if dry_run {
                    return self.apply(kind, child, true).await.map(drop);
                }
                let metadata = metadata_of(child);
                self.own_writes.record(&kind.resource.kind, &metadata);
                let applied = self.apply(kind, child, false).await;
                let unchanged = applied.as_ref().is_ok_and(|applied| {
                    before.is_some_and(|o| {
                        o.metadata.resource_version == applied.metadata.resource_version
                    })
                });
                if applied.is_err() || unchanged {
                    // No watch event will come for this write.
                    self.own_writes.forget(&kind.resource.kind, &metadata);
                }
                applied.map(drop)
            }
            Step::Recreate { child, before, .. } => {
                if dry_run {
                    prune::delete(self.client, kind, before, true).await?;
                    return self.check_creation(kind, child).await;
                }
                self.own_writes
                    .record(&kind.resource.kind, &before.metadata);
                prune::delete(self.client, kind, before, false).await?;
                if !self.gone(kind, before).await? {
                    // A later pass creates it (see `HeldBecause::Deleting`).
                    return Ok(());
                }
                self.own_writes
                    .record(&kind.resource.kind, &metadata_of(child));
                self.apply(kind, child, false).await?;
                tracing::info!(reconciler = %self.reconciler, parent = self.parent, child = %step.describe(kind), "recreated a child whose desired state changed");
                Ok(())
            }
            Step::Prune { object, .. } => {
                if !dry_run {
                    self.own_writes
                        .record(&kind.resource.kind, &object.metadata);
                }
                prune::delete(self.client, kind, object, dry_run).await?;
                if !dry_run {
                    tracing::info!(reconciler = %self.reconciler, parent = self.parent, child = ?object.metadata.name, kind = %kind.resource.kind, "pruned a child no longer desired");
                }
                Ok(())
            }
            Step::Release { object, .. } => {
                self.release(kind, object, dry_run).await?;
                if !dry_run {
                    tracing::info!(reconciler = %self.reconciler, parent = self.parent, child = %step.describe(kind), "released a child no longer desired (deletePolicy: Orphan)");
                }
                Ok(())
            }
        }
    }

    async fn apply(
        &self,
        kind: &Kind,
        child: &Value,
        dry_run: bool,
    ) -> Result<std::sync::Arc<DynamicObject>, ApplyError> {
        apply::apply(self.client, kind, child, self.field_manager, dry_run).await
    }

    /// Asks whether the API server would create `child` (schema, RBAC,
    /// quota, admission), while an object of its name still exists: a dry
    /// run of the same object under a generated name. (A dry-run apply
    /// would check an update of the old object instead, which is exactly
    /// what a recreate avoids, e.g. for an immutable ConfigMap.)
    async fn check_creation(&self, kind: &Kind, child: &Value) -> Result<(), ApplyError> {
        let (name, namespace) = apply::name_of(child);
        let refused = |source| ApplyError::refusing(kind, namespace, name, true)(source);
        let mut object: DynamicObject = serde_json::from_value(child.clone())
            .map_err(|error| refused(kube::Error::SerdeError(error)))?;
        object.metadata.name = None;
        object.metadata.generate_name = Some(format!("{name}-"));
        let params = PostParams {
            dry_run: true,
            field_manager: Some(self.field_manager.to_string()),
        };
        api_for(self.client, kind, namespace)
            .create(&params, &object)
            .await
            .map(drop)
            .map_err(refused)
    }

    /// Removes the host's labels, applied hash and the parent's
    /// ownerReference from `object`, if it is still the version observed.
    async fn release(
        &self,
        kind: &Kind,
        object: &DynamicObject,
        dry_run: bool,
    ) -> Result<(), ApplyError> {
        let (name, namespace) = (
            object.metadata.name.as_deref().unwrap_or_default(),
            object.metadata.namespace.as_deref(),
        );
        let params = PatchParams {
            dry_run,
            field_manager: Some(self.field_manager.to_string()),
            ..PatchParams::default()
        };
        api_for(self.client, kind, namespace)
            .patch(
                name,
                &params,
                &Patch::Merge(release_patch(object, self.parent_uid)),
            )
            .await
            .map(drop)
            .map_err(ApplyError::refusing(kind, namespace, name, dry_run))
    }

    /// Waits until the deleted `object` is gone (a new object of its name
    /// counts as gone); false when it is still there after [`RECREATE_WAIT`].
    async fn gone(&self, kind: &Kind, object: &DynamicObject) -> Result<bool, ApplyError> {
        let (name, namespace) = (
            object.metadata.name.as_deref().unwrap_or_default(),
            object.metadata.namespace.as_deref(),
        );
        let api = api_for(self.client, kind, namespace);
        let deadline = tokio::time::Instant::now() + RECREATE_WAIT;
        let mut wait = Duration::from_millis(50);
        loop {
            let found = api
                .get_metadata_opt(name)
                .await
                .map_err(ApplyError::refusing(kind, namespace, name, false))?;
            if found.is_none_or(|found| found.metadata.uid != object.metadata.uid) {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    fn kind_of(&self, step: &Step) -> &Kind {
        &self.kinds.kinds[step.kind()]
    }
}

/// The JSON merge patch that releases `object` from the parent `parent_uid`:
/// without the host's labels and applied hash, its other ownerReferences
/// kept, and only if it is still the version observed (`resourceVersion`).
fn release_patch(object: &DynamicObject, parent_uid: &str) -> Value {
    let others: Vec<_> = object
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|reference| reference.uid != parent_uid)
        .collect();
    json!({
        "metadata": {
            "resourceVersion": object.metadata.resource_version,
            "labels": {RECONCILER: null, PARENT_UID: null},
            "annotations": {APPLIED_HASH: null},
            "ownerReferences": if others.is_empty() { Value::Null } else { json!(others) },
        }
    })
}

fn metadata_of(child: &Value) -> kube::api::ObjectMeta {
    serde_json::from_value(child["metadata"].clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_removes_only_the_hosts_marks_and_only_from_the_version_seen() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": "s", "namespace": "shop", "resourceVersion": "42",
                "labels": {RECONCILER: "shop.r", PARENT_UID: "p1", "team": "blue"},
                "annotations": {APPLIED_HASH: "h", "note": "kept"},
                "ownerReferences": [
                    {"apiVersion": "example.sous.dev/v1", "kind": "MyApp", "name": "p", "uid": "p1", "controller": true},
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c1"},
                ],
            },
        }))
        .unwrap();
        let patch = release_patch(&object, "p1");
        assert_eq!(
            patch,
            json!({"metadata": {
                "resourceVersion": "42",
                "labels": {RECONCILER: null, PARENT_UID: null},
                "annotations": {APPLIED_HASH: null},
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c1"}],
            }})
        );
        let mut only_ours = object;
        only_ours.metadata.owner_references.as_mut().unwrap().pop();
        assert_eq!(
            release_patch(&only_ours, "p1")["metadata"]["ownerReferences"],
            Value::Null
        );
    }
}
