//! Stage "patch": fields the guest contributes to objects the reconciler does
//! not own. A patch is server-side applied with the reconciler's field
//! manager and nothing else (no owner reference, no host labels); it never
//! creates an object (the apply carries the `resourceVersion` just read, so
//! an object deleted meanwhile is not created again) and never deletes one.
//! A patch no longer returned is simply not applied again: the fields keep
//! their last values and stay owned by the reconciler's field manager until
//! someone else changes them.

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::apply::{self, ApplyError};
use super::observe::RelatedSource;
use crate::crd::TypeMeta;
use crate::telemetry::{ChildWrite, Metrics};
use crate::validate::TypeRef;

/// What became of one patch.
#[derive(Debug, PartialEq, Eq)]
pub enum Patched {
    /// Applied: some field differed.
    Applied(String),
    /// Every field already held its value: nothing written.
    Unchanged,
    /// The object does not exist: nothing written.
    Missing(String),
}

/// Writes the patches of one pass.
pub struct Patcher<'a> {
    /// The client writes go through (the reconciler's identity).
    pub client: &'a kube::Client,
    /// The reconciler's field manager.
    pub field_manager: &'a str,
    /// The declared related kinds, the only ones a patch may target
    /// (checked by validation).
    pub related: &'a [RelatedSource],
    /// Where write counts go.
    pub metrics: &'a Metrics,
    /// The reconciler's label in metrics.
    pub label: &'a str,
}

impl Patcher<'_> {
    /// Applies every patch, in order; stops at the first refusal.
    pub async fn write(&self, patches: &[Value]) -> Result<Vec<Patched>, ApplyError> {
        let mut outcomes = Vec::with_capacity(patches.len());
        for patch in patches {
            outcomes.push(self.write_one(patch).await?);
        }
        Ok(outcomes)
    }

    async fn write_one(&self, patch: &Value) -> Result<Patched, ApplyError> {
        let wanted = TypeRef::from(&TypeMeta::of_object(patch));
        let kind = &self
            .related
            .iter()
            .find(|source| source.kind.type_ref().same_resource(&wanted))
            .expect("validation lets through only declared related kinds")
            .kind;
        let (name, namespace) = apply::name_of(patch);
        let api = apply::api_for(self.client, kind, namespace);
        let refusing = || ApplyError::refusing(kind, namespace, name, false);
        let described = apply::describe(kind, namespace, name);
        let Some(current) = api.get_opt(name).await.map_err(refusing())? else {
            return Ok(Patched::Missing(described));
        };
        if apply::holds(&current, patch) {
            return Ok(Patched::Unchanged);
        }
        let mut body = patch.clone();
        body["metadata"]["resourceVersion"] = current.metadata.resource_version.clone().into();
        let params = PatchParams::apply(self.field_manager).force();
        api.patch(name, &params, &Patch::Apply(&body))
            .await
            .map_err(refusing())?;
        self.metrics.child_written(self.label, ChildWrite::Patch);
        tracing::info!(object = %described, "patched");
        Ok(Patched::Applied(described))
    }
}
