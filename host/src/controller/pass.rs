//! One pass for one parent: observe -> call guest -> apply -> prune ->
//! status -> requeue, or the finalizer's path when the parent is going.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;

use super::Setup;
use super::adopt::ClaimError;
use super::apply::{self, ApplyError, Owner};
use super::children::OwnWrites;
use super::departures::Departures;
use super::drift::DriftGuard;
use super::finalizer;
use super::kinds::Kind;
use super::labels::FINALIZER;
use super::leaving::{self, Leaving};
use super::observe::{self, ChildKind, RelatedSource};
use super::parent_metadata::{Entries, ParentMetadata};
use super::patches::{Patched, Patcher};
use super::plan::{self, ChildKinds, KindNotWatched};
use super::requests::{FromCaches, RequestBook};
use super::status::{self, Readiness};
use super::write::{Writer, Written};
use crate::crd::Mode;
use crate::render::{RenderError, Rendered};
use crate::telemetry::Outcome;

/// How long to wait before a pass that found no module tries again.
const NO_MODULE_RETRY: Duration = Duration::from_secs(5);
/// First delay after a retryable failure; doubles per consecutive failure.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest delay after repeated failures.
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Longest delay after a pass that failed transiently (see
/// [`PassError::is_transient`]).
const TRANSIENT_RETRY_MAX: Duration = Duration::from_secs(5);

/// Everything the passes of one reconciler share: what it was set up with,
/// and the caches and state its controller adds.
pub struct Spine {
    /// The reconciler, its kinds, module, clients and reports.
    pub setup: Setup,
    /// Child kinds and their indexes.
    pub children: Vec<ChildKind>,
    /// Related kinds and their caches.
    pub related: Arc<[RelatedSource]>,
    /// Writes whose watch events must not trigger another pass.
    pub own_writes: Arc<OwnWrites>,
    /// Consecutive retryable failures per parent UID.
    pub failures: Mutex<HashMap<String, Failures>>,
    /// Recent restores of drifted children.
    pub drift: DriftGuard,
    /// Decorated parents already told that their guest's status is ignored.
    pub status_ignored: Mutex<HashSet<String>>,
    /// Parents that left the selector, let go of in the background.
    pub departures: Arc<Departures>,
    /// The related requests each parent settled on.
    pub requests: Arc<RequestBook>,
}

/// Why a pass failed in a way worth retrying with backoff.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The guest failed with a retryable error.
    #[error(transparent)]
    Guest(RenderError),
    /// The API server refused a child.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Another API call failed (status, finalizer).
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    /// The policy allowed a kind the host does not watch as a child.
    #[error(transparent)]
    KindNotWatched(#[from] KindNotWatched),
    /// A desired child's name is taken by an object the host may not write.
    #[error(transparent)]
    Claim(ClaimError),
    /// The guest's `finalize` failed.
    #[error("finalize failed: {0}")]
    Finalize(crate::runtime::CallError),
    /// The API server refused the parent's labels or annotations.
    #[error("writing the parent's labels or annotations: {0}")]
    ParentMetadata(kube::Error),
}

impl PassError {
    /// UpperCamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Guest(error) => error.reason(),
            Self::Apply(error) => error.reason(),
            Self::Api(_) => "ApiError",
            Self::KindNotWatched(_) => "KindNotWatched",
            Self::Claim(error) => error.reason(),
            Self::Finalize(error) => error.reason(),
            Self::ParentMetadata(kube::Error::Api(status)) if status.code == 409 => {
                "ParentMetadataConflict"
            }
            Self::ParentMetadata(_) => "ParentMetadataFailed",
        }
    }

    /// Whether the API server could not be reached, asked the host to slow
    /// down (`429`, API Priority and Fairness) or failed itself (`5xx`):
    /// such a pass is retried within seconds, whatever failed before, so
    /// that parents converge soon after the API server is back.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            Self::Api(source)
            | Self::ParentMetadata(source)
            | Self::Apply(ApplyError { source, .. }) => source,
            _ => return false,
        };
        match source {
            kube::Error::Api(status) => status.code == 429 || status.code >= 500,
            _ => true,
        }
    }
}

/// The controller's reconcile function: one pass, timed and counted.
pub async fn reconcile(parent: Arc<DynamicObject>, spine: Arc<Spine>) -> Result<Action, PassError> {
    let started = Instant::now();
    let name = display_name(&parent);
    let result = pass(&parent, &spine).await;
    let label = spine.setup.key.label_value();
    let outcome = match &result {
        Ok(_) => Outcome::Success,
        Err(error) => {
            tracing::warn!(reconciler = %spine.setup.key, parent = %name, reason = error.reason(), %error, "pass failed, will retry");
            Outcome::Error
        }
    };
    spine
        .setup
        .metrics
        .reconcile_finished(&label, outcome, started.elapsed());
    result
}

/// The controller's error policy: exponential backoff per parent, counted
/// apart for transient failures (capped at a few seconds) and for the
/// others, so that an outage's many transient failures do not make the
/// first other failure after it wait minutes (an API server that has just
/// come back may refuse a request or two while its RBAC caches fill).
pub fn error_policy(parent: Arc<DynamicObject>, error: &PassError, spine: Arc<Spine>) -> Action {
    let uid = parent.metadata.uid.clone().unwrap_or_default();
    let mut failures = spine.failures.lock().expect("failures lock");
    Action::requeue(
        failures
            .entry(uid)
            .or_default()
            .next_wait(error.is_transient()),
    )
}

/// Consecutive failed passes of one parent, by kind of failure.
#[derive(Debug, Default)]
pub struct Failures {
    /// Transient failures (see [`PassError::is_transient`]).
    transient: u32,
    /// Every other failure.
    other: u32,
}

impl Failures {
    /// Counts one more failure and returns how long to wait before the
    /// next pass.
    fn next_wait(&mut self, transient: bool) -> Duration {
        if transient {
            self.transient = self.transient.saturating_add(1);
            backoff(self.transient).min(TRANSIENT_RETRY_MAX)
        } else {
            self.other = self.other.saturating_add(1);
            backoff(self.other)
        }
    }
}

fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(BACKOFF_MAX)
}

async fn pass(parent: &DynamicObject, spine: &Spine) -> Result<Action, PassError> {
    for child in &spine.children {
        child.index.ready().await;
    }
    for related in spine.related.iter() {
        // The writer lives in the controller's streams as long as the spine.
        let _ = related.store.wait_until_ready().await;
    }
    let Some(module) = spine.setup.module.borrow().clone() else {
        // The controller starts only once a module is loaded; never reached.
        return Ok(Action::requeue(NO_MODULE_RETRY));
    };
    let holds_finalizer = leaving::needs_finalizer(&spine.setup.spec);
    if finalizer::deleting(parent) {
        if holds_finalizer && finalizer::has(&parent.metadata, FINALIZER) {
            let again = leaving::let_go(parent, spine, module, Leaving::Deleted).await?;
            return Ok(again.map_or_else(Action::await_change, Action::requeue));
        }
        return Ok(Action::await_change());
    }
    if !spine.departures.selects(&parent.metadata) {
        // Its labels changed as the watch reported it: let it go.
        spine.departures.candidate(parent);
        return Ok(Action::await_change());
    }
    let (client, parent_kind) = (&spine.setup.client, &spine.setup.kinds.parent);
    if holds_finalizer {
        finalizer::add(client, parent_kind, parent, FINALIZER).await?;
    } else {
        // The Reconciler stopped needing one: nothing would remove it.
        finalizer::remove(client, parent_kind, parent, FINALIZER).await?;
    }
    let observation = observe::observe(
        parent,
        &spine.children,
        &spine.related,
        spine.setup.spec.config.as_ref(),
    );
    let children = observation.children;
    let from_caches = FromCaches {
        sources: spine.related.clone(),
        parent_namespace: parent.metadata.namespace.clone(),
        settled: spine
            .requests
            .settled(parent.metadata.uid.as_deref().unwrap_or_default()),
    };
    match spine
        .setup
        .caller
        .reconcile(module, observation.observed, from_caches)
        .await
    {
        Ok(rendered) => converge(parent, spine, &children, rendered).await,
        Err(error) => guest_failed(parent, spine, error).await,
    }
}

/// Applies, prunes and reports a successful answer.
async fn converge(
    parent: &DynamicObject,
    spine: &Spine,
    observed: &[Vec<Arc<DynamicObject>>],
    rendered: Rendered,
) -> Result<Action, PassError> {
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    spine.setup.events.guest(&reference, &rendered.events).await;
    if rendered.status.is_some() && spine.setup.spec.mode == Mode::Decorator {
        warn_status_ignored(parent, spine).await;
    }
    let outcome = match write_children(parent, spine, observed, &rendered.children).await {
        Ok(outcome) => outcome,
        Err(error) => {
            report_failure(parent, spine, error.reason(), &error.to_string()).await;
            return Err(error);
        }
    };
    if let Err(error) = write_beyond_children(parent, spine, &rendered).await {
        report_failure(parent, spine, error.reason(), &error.to_string()).await;
        return Err(error);
    }
    spine.requests.record(
        parent,
        &spine.setup.kinds.parent.resource,
        &rendered.related_requests,
    );
    let readiness = Readiness::reconciled_holding(rendered.children.len(), &outcome.held);
    write_status(parent, spine, rendered.status.as_ref(), &readiness).await?;
    spine.setup.report.succeeded();
    spine
        .failures
        .lock()
        .expect("failures lock")
        .remove(parent.metadata.uid.as_deref().unwrap_or_default());
    let asked = rendered.requeue_after_ms.map(Duration::from_millis);
    Ok(match asked.into_iter().chain(outcome.again_in).min() {
        Some(after) => Action::requeue(after),
        None => resync(spine),
    })
}

/// Writes what an answer asks beyond its children: the patches, then the
/// parent's labels and annotations.
async fn write_beyond_children(
    parent: &DynamicObject,
    spine: &Spine,
    rendered: &Rendered,
) -> Result<(), PassError> {
    let field_manager = spine.setup.key.field_manager();
    let patcher = Patcher {
        client: &spine.setup.writer,
        field_manager: &field_manager,
        related: &spine.related,
        metrics: &spine.setup.metrics,
        label: &spine.setup.caller.label,
    };
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    for outcome in patcher.write(&rendered.patches).await? {
        match outcome {
            Patched::Applied(object) => {
                let message = format!("applied the reconciler's fields to {object}");
                spine
                    .setup
                    .events
                    .normal(&reference, "Patch", "Patched", &message)
                    .await;
            }
            Patched::Missing(object) => {
                let message = format!("{object} does not exist; a patch never creates an object");
                spine
                    .setup
                    .events
                    .warning(&reference, "Patch", "PatchTargetMissing", &message)
                    .await;
            }
            Patched::Unchanged => {}
        }
    }
    set_parent_metadata(
        parent,
        spine,
        rendered.parent_labels.as_ref(),
        rendered.parent_annotations.as_ref(),
    )
    .await
}

/// Applies the complete sets of labels and annotations the reconciler sets
/// on `parent` (none: leaves that map alone).
pub(super) async fn set_parent_metadata(
    parent: &DynamicObject,
    spine: &Spine,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<(), PassError> {
    let field_manager = spine.setup.key.field_manager();
    let metadata = ParentMetadata {
        client: &spine.setup.writer,
        kind: &spine.setup.kinds.parent,
        field_manager: &field_manager,
        metrics: &spine.setup.metrics,
        label: &spine.setup.caller.label,
    };
    for (entries, wanted) in [
        (Entries::Labels, labels),
        (Entries::Annotations, annotations),
    ] {
        if let Some(wanted) = wanted {
            metadata
                .apply(parent, entries, wanted)
                .await
                .map_err(PassError::ParentMetadata)?;
        }
    }
    Ok(())
}

/// What writing a pass's children left for later.
pub(super) struct ChildrenWritten {
    /// Desired children left as they are for now (see [`plan::Held`]).
    pub held: Vec<plan::Held>,
    /// When to look again by itself: a held-back restore of a drifted
    /// child, or a child waited for.
    pub again_in: Option<Duration>,
}

/// Plans the writes that make the observed children the desired ones, holds
/// back restores of drifted children past their limit, checks the whole
/// plan with a dry run, then makes it, and records an event for every
/// child adopted or released.
pub(super) async fn write_children(
    parent: &DynamicObject,
    spine: &Spine,
    observed: &[Vec<Arc<DynamicObject>>],
    desired: &[serde_json::Value],
) -> Result<ChildrenWritten, PassError> {
    let owner = Owner {
        parent,
        kind: &spine.setup.kinds.parent,
        key: &spine.setup.key,
    };
    // The same kinds, in the same order, as `spine.children` and
    // `spec.children`.
    let kinds = ChildKinds {
        kinds: &spine.setup.kinds.children,
        rules: &spine.setup.spec.children,
    };
    let mut plan = plan::plan(kinds, observed, desired, &owner)?;
    let field_manager = spine.setup.key.field_manager();
    let held_back = guard_drift(parent, spine, kinds.kinds, &mut plan, &field_manager).await;
    let parent_name = display_name(parent);
    let writer = Writer {
        client: &spine.setup.writer,
        field_manager: &field_manager,
        kinds,
        own_writes: &spine.own_writes,
        reconciler: &spine.setup.key,
        parent_uid: parent.metadata.uid.as_deref().unwrap_or_default(),
        parent: &parent_name,
        metrics: &spine.setup.metrics,
    };
    let written = writer.write(&plan).await?;
    announce(parent, spine, &written).await;
    let waiting = plan
        .held
        .iter()
        .filter_map(|held| held.why.recheck_after())
        .min();
    Ok(ChildrenWritten {
        held: plan.held,
        again_in: held_back.into_iter().chain(waiting).min(),
    })
}

/// Tells once per parent (per host) that a Decorator's guest answered a
/// status, which the host does not write to someone else's object.
async fn warn_status_ignored(parent: &DynamicObject, spine: &Spine) {
    let uid = parent.metadata.uid.clone().unwrap_or_default();
    if !spine
        .status_ignored
        .lock()
        .expect("status-ignored lock")
        .insert(uid)
    {
        return;
    }
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    let message = format!(
        "the reconciler {} is a Decorator, so the status its guest answered is ignored: a decorated object's status belongs to its own controller",
        spine.setup.key
    );
    spine
        .setup
        .events
        .warning(&reference, "Reconcile", "StatusIgnored", &message)
        .await;
}

/// Records on the parent each child adopted or released.
async fn announce(parent: &DynamicObject, spine: &Spine, written: &Written) {
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    let events = &spine.setup.events;
    for child in &written.adopted {
        let message =
            format!("{child} existed with no controller and was adopted (adopt: IfUnowned)");
        events
            .normal(&reference, "Adopt", "Adopted", &message)
            .await;
    }
    for child in &written.released {
        let message = format!(
            "{child} is no longer desired and was released (deletePolicy: Orphan): it stays, without this reconciler's labels and ownerReference"
        );
        events
            .normal(&reference, "Release", "Released", &message)
            .await;
    }
}

/// Announces each restore of a drifted child with who changed it, and drops
/// from `plan` the restores past the child's limit; returns how long until
/// the first held-back one is allowed.
async fn guard_drift(
    parent: &DynamicObject,
    spine: &Spine,
    kinds: &[Kind],
    plan: &mut plan::WritePlan<'_>,
    field_manager: &str,
) -> Option<Duration> {
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    let mut held_back: Option<Duration> = None;
    let mut kept = Vec::with_capacity(plan.steps.len());
    for step in std::mem::take(&mut plan.steps) {
        let plan::Step::Apply {
            kind,
            before: Some(before),
            drift: true,
            ..
        } = &step
        else {
            kept.push(step);
            continue;
        };
        let (namespace, name) = (
            before.metadata.namespace.clone(),
            before.metadata.name.clone().unwrap_or_default(),
        );
        let child = apply::describe(&kinds[*kind], namespace.as_deref(), &name);
        let who = apply::changed_by(before, field_manager)
            .unwrap_or_else(|| "another field manager".to_string());
        match spine
            .drift
            .allow((kinds[*kind].resource.kind.clone(), namespace, name))
        {
            Ok(()) => {
                let message = format!(
                    "{child} was changed by {who}; restoring the fields this reconciler sets"
                );
                spine
                    .setup
                    .events
                    .warning(&reference, "Restore", "DriftRestored", &message)
                    .await;
                kept.push(step);
            }
            Err(wait) => {
                tracing::info!(reconciler = %spine.setup.key, parent = %display_name(parent), %child, %who, retry_in = ?wait, "drift restored too often; holding back");
                held_back = Some(held_back.map_or(wait, |held| held.min(wait)));
            }
        }
    }
    plan.steps = kept;
    held_back
}

/// Reports a guest failure on the parent; retries only what may succeed
/// unchanged.
async fn guest_failed(
    parent: &DynamicObject,
    spine: &Spine,
    error: RenderError,
) -> Result<Action, PassError> {
    report_failure(parent, spine, error.reason(), &error.to_string()).await;
    let retryable = matches!(&error, RenderError::Call(call) if call.is_retryable());
    if retryable {
        Err(PassError::Guest(error))
    } else {
        tracing::warn!(reconciler = %spine.setup.key, parent = %display_name(parent), reason = error.reason(), %error, "guest answer refused; waiting for the parent or module to change");
        Ok(resync(spine))
    }
}

/// Records a failed pass in the parent's status, an event, metrics and the
/// Reconciler's status.
pub(super) async fn report_failure(
    parent: &DynamicObject,
    spine: &Spine,
    reason: &str,
    message: &str,
) {
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    spine
        .setup
        .events
        .failure(&reference, reason, message)
        .await;
    spine
        .setup
        .metrics
        .error(&spine.setup.key.label_value(), reason);
    spine.setup.report.failed(&display_name(parent), message);
    let readiness = Readiness::failed(reason, message);
    if let Err(error) = write_status(parent, spine, None, &readiness).await {
        tracing::warn!(reconciler = %spine.setup.key, parent = %display_name(parent), %error, "could not write the parent's status");
    }
}

pub(super) async fn write_status(
    parent: &DynamicObject,
    spine: &Spine,
    guest: Option<&serde_json::Value>,
    readiness: &Readiness,
) -> Result<(), kube::Error> {
    // A decorated parent's status belongs to someone else.
    if !spine.setup.kinds.parent.has_status || spine.setup.spec.mode == Mode::Decorator {
        return Ok(());
    }
    let desired = status::desired_status(parent, guest, readiness, &status::now());
    status::write(
        &spine.setup.client,
        &spine.setup.kinds.parent,
        parent,
        desired,
        &spine.setup.key.field_manager(),
    )
    .await
    .map(drop)
}

/// Every parent is reconciled again after this long unless the Reconciler
/// says otherwise (`spec.resyncSeconds`; 0 turns resync off).
const DEFAULT_RESYNC: Duration = Duration::from_secs(600);

fn resync(spine: &Spine) -> Action {
    match spine.setup.spec.resync_seconds {
        Some(0) => Action::await_change(),
        Some(seconds) => Action::requeue(Duration::from_secs(seconds.into())),
        None => Action::requeue(DEFAULT_RESYNC),
    }
}

/// `namespace/name` of an object.
pub fn display_name(object: &DynamicObject) -> String {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    match &object.metadata.namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        let delays: Vec<u64> = [1, 2, 3, 4, 9, 10, 40]
            .map(|n| backoff(n).as_secs())
            .to_vec();
        assert_eq!(delays, [1, 2, 4, 8, 256, 300, 300]);
    }

    #[test]
    fn an_outages_transient_failures_do_not_lengthen_the_next_other_failure() {
        let mut failures = Failures::default();
        let outage: Vec<u64> = (0..6).map(|_| failures.next_wait(true).as_secs()).collect();
        assert_eq!(outage, [1, 2, 4, 5, 5, 5]);
        // The API server is back but refuses once (its RBAC caches filling).
        assert_eq!(failures.next_wait(false), Duration::from_secs(1));
        assert_eq!(failures.next_wait(false), Duration::from_secs(2));
    }
}
