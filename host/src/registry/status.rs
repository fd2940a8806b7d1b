//! The status of a Reconciler object: conditions set by its lifecycle,
//! counters bumped by every pass, written at most every few seconds.

use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::json;
use tokio::sync::Notify;

use crate::crd::{Condition, GROUP, ReconcilerKey, ReconcilerStatus};

/// How often a changed status is written at most: counters change on every
/// pass, and a pass must not cost a write.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// The `Ready` condition: the controller runs.
pub const READY: &str = "Ready";
/// The `ModuleReady` condition: a module is loaded and serving.
pub const MODULE_READY: &str = "ModuleReady";

/// The status one reconciler reports, shared by its lifecycle and passes.
#[derive(Default)]
pub struct StatusReport {
    state: Mutex<(ReconcilerStatus, bool)>,
    changed: Notify,
}

impl StatusReport {
    /// Sets a condition; the transition time moves only when its status flips.
    pub fn condition(&self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        let message = message.into();
        let status = if ok { "True" } else { "False" };
        self.update(|report| {
            let now = jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .expect("rounding to seconds")
                .to_string();
            let generation = report.observed_generation;
            let existing = report.conditions.iter_mut().find(|c| c.type_ == type_);
            match existing {
                Some(c) if c.status == status && c.reason == reason && c.message == message => {
                    return false;
                }
                Some(c) => {
                    if c.status != status {
                        c.last_transition_time = Some(now);
                    }
                    c.status = status.into();
                    c.reason = reason.into();
                    c.message = message;
                    c.observed_generation = generation;
                }
                None => report.conditions.push(Condition {
                    type_: type_.into(),
                    status: status.into(),
                    reason: reason.into(),
                    message,
                    last_transition_time: Some(now),
                    observed_generation: generation,
                }),
            }
            true
        });
    }

    /// The module serving now.
    pub fn module_digest(&self, digest: String) {
        self.update(|report| {
            let changed = report.module_digest.as_ref() != Some(&digest);
            report.module_digest = Some(digest);
            changed
        });
    }

    /// The generation of the spec being served.
    pub fn generation(&self, generation: Option<i64>) {
        self.update(|report| {
            let changed = report.observed_generation != generation;
            report.observed_generation = generation;
            changed
        });
    }

    /// A pass succeeded.
    pub fn succeeded(&self) {
        self.update(|report| {
            report.reconciles += 1;
            true
        });
    }

    /// A pass failed for `parent`.
    pub fn failed(&self, parent: &str, message: &str) {
        self.update(|report| {
            report.reconciles += 1;
            report.errors += 1;
            report.last_error = Some(format!("{parent}: {message}"));
            true
        });
    }

    fn update(&self, change: impl FnOnce(&mut ReconcilerStatus) -> bool) {
        let mut state = self.state.lock().expect("status report lock");
        if change(&mut state.0) {
            state.1 = true;
            self.changed.notify_one();
        }
    }

    /// The status to write, if it changed since the last call.
    fn take_changed(&self) -> Option<ReconcilerStatus> {
        let mut state = self.state.lock().expect("status report lock");
        std::mem::take(&mut state.1).then(|| state.0.clone())
    }

    /// Writes the status whenever it changed, at most every
    /// [`FLUSH_INTERVAL`], until the task is dropped.
    pub async fn flush_forever(&self, client: kube::Client, key: ReconcilerKey) {
        let api = reconciler_api(client, &key);
        loop {
            self.changed.notified().await;
            if let Some(status) = self.take_changed() {
                let patch = json!({ "status": status });
                if let Err(error) = api
                    .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::warn!(reconciler = %key, %error, "could not write the reconciler's status");
                }
            }
            tokio::time::sleep(FLUSH_INTERVAL).await;
        }
    }
}

fn reconciler_api(client: kube::Client, key: &ReconcilerKey) -> Api<DynamicObject> {
    let kind = if key.namespace.is_some() {
        "Reconciler"
    } else {
        "ClusterReconciler"
    };
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1alpha1", kind));
    match &key.namespace {
        Some(namespace) => Api::namespaced_with(client, namespace, &resource),
        None => Api::all_with(client, &resource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_condition_changes_nothing_and_a_flip_moves_the_transition_time() {
        let report = StatusReport::default();
        report.condition(READY, false, "ParentKindNotFound", "no CRD");
        let first = report.take_changed().unwrap();
        report.condition(READY, false, "ParentKindNotFound", "no CRD");
        assert!(report.take_changed().is_none());
        report.condition(READY, true, "Running", "watching");
        let flipped = report.take_changed().unwrap();
        assert_eq!(first.conditions.len(), 1);
        assert_eq!(flipped.conditions[0].status, "True");
        assert_eq!(flipped.conditions[0].reason, "Running");
    }

    #[test]
    fn counters_count_passes_and_errors_and_keep_the_last_error() {
        let report = StatusReport::default();
        report.succeeded();
        report.failed("shop/web", "guest ran out of fuel");
        report.succeeded();
        let status = report.take_changed().unwrap();
        assert_eq!((status.reconciles, status.errors), (3, 1));
        assert_eq!(
            status.last_error.as_deref(),
            Some("shop/web: guest ran out of fuel")
        );
    }
}
