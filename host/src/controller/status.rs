//! Stage "status": the parent's `.status` is the guest's status plus a
//! `Ready` condition and `observedGeneration`, written through the status
//! subresource only when it changes.

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::apply::api_for;
use super::kinds::Kind;
use super::plan::Held;

/// The host's verdict on one pass, as the parent's `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the pass succeeded.
    pub ready: bool,
    /// UpperCamelCase reason.
    pub reason: String,
    /// Detail for humans.
    pub message: String,
}

impl Readiness {
    /// A successful pass.
    pub fn reconciled(children: usize) -> Self {
        Self {
            ready: true,
            reason: "Reconciled".into(),
            message: format!("{children} children applied"),
        }
    }

    /// A successful pass that left `held` desired children as they are for
    /// now: not ready while one of them waits (a rolling update, a recreate
    /// in progress), ready with a note when their kind updates only on
    /// deletion.
    pub fn reconciled_holding(children: usize, held: &[Held]) -> Self {
        let mut readiness = Self::reconciled(children - held.len().min(children));
        if held.is_empty() {
            return readiness;
        }
        let shown: Vec<String> = held.iter().take(3).map(ToString::to_string).collect();
        let more = held.len().saturating_sub(shown.len());
        let mut message = format!(
            "{}; {} left as they are: {}",
            readiness.message,
            held.len(),
            shown.join("; ")
        );
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        readiness.message = message;
        if held.iter().any(|held| held.why.is_waiting()) {
            readiness.ready = false;
            readiness.reason = "Progressing".into();
        }
        readiness
    }

    /// A parent being deleted whose guest is not done finalizing yet.
    pub fn finalizing(message: impl Into<String>) -> Self {
        Self::failed("Finalizing", message)
    }

    /// A failed pass.
    pub fn failed(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The status the parent should have: `guest` (or, when the pass failed and
/// the guest said nothing, the current status) with the host's `Ready`
/// condition and `observedGeneration`. The condition keeps its transition
/// time while its status does not change.
pub fn desired_status(
    parent: &DynamicObject,
    guest: Option<&Value>,
    readiness: &Readiness,
    now: &str,
) -> Value {
    let current = parent.data.get("status").cloned().unwrap_or(json!({}));
    let mut status = match guest {
        Some(Value::Object(fields)) => fields.clone(),
        _ if !readiness.ready => current.as_object().cloned().unwrap_or_default(),
        _ => Map::new(),
    };
    let generation = parent.metadata.generation;
    let previous = find_ready(&current);
    let flipped = previous.is_none_or(|p| p["status"] != status_word(readiness.ready));
    let transition = match previous {
        Some(previous) if !flipped => previous["lastTransitionTime"].clone(),
        _ => Value::from(now),
    };
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|c| c["type"] != "Ready")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    conditions.push(json!({
        "type": "Ready",
        "status": status_word(readiness.ready),
        "reason": readiness.reason,
        "message": readiness.message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }));
    status.insert("conditions".into(), Value::Array(conditions));
    status.insert("observedGeneration".into(), json!(generation));
    Value::Object(status)
}

/// Now, as a condition's `lastTransitionTime` carries it (whole seconds).
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .expect("rounding a timestamp to seconds")
        .to_string()
}

fn status_word(ready: bool) -> &'static str {
    if ready { "True" } else { "False" }
}

fn find_ready(status: &Value) -> Option<&Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// Writes `status` to the parent's status subresource unless it already is
/// the parent's status. Returns whether a write happened.
pub async fn write(
    client: &kube::Client,
    kind: &Kind,
    parent: &DynamicObject,
    status: Value,
    field_manager: &str,
) -> Result<bool, kube::Error> {
    if parent.data.get("status") == Some(&status) {
        return Ok(false);
    }
    let name = parent.metadata.name.as_deref().unwrap_or_default();
    let api = api_for(client, kind, parent.metadata.namespace.as_deref());
    let patch = json!({
        "apiVersion": kind.resource.api_version,
        "kind": kind.resource.kind,
        "status": status,
    });
    let params = PatchParams::apply(field_manager).force();
    api.patch_status(name, &params, &Patch::Apply(&patch))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "web", "namespace": "shop", "generation": 3},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn the_guest_status_gets_a_ready_condition_and_the_generation() {
        let status = desired_status(
            &parent(json!(null)),
            Some(
                &json!({"phase": "Running", "conditions": [{"type": "Available", "status": "True"}]}),
            ),
            &Readiness::reconciled(2),
            "2026-11-22T10:00:00Z",
        );
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["observedGeneration"], 3);
        let conditions = status["conditions"].as_array().unwrap();
        assert_eq!(conditions[0]["type"], "Available");
        assert_eq!(conditions[1]["type"], "Ready");
        assert_eq!(conditions[1]["status"], "True");
        assert_eq!(conditions[1]["observedGeneration"], 3);
        assert_eq!(conditions[1]["lastTransitionTime"], "2026-11-22T10:00:00Z");
    }

    #[test]
    fn an_unchanged_verdict_keeps_its_transition_time_so_nothing_is_rewritten() {
        let first = desired_status(
            &parent(json!(null)),
            Some(&json!({"phase": "Running"})),
            &Readiness::reconciled(2),
            "2026-11-22T10:00:00Z",
        );
        let again = desired_status(
            &parent(first.clone()),
            Some(&json!({"phase": "Running"})),
            &Readiness::reconciled(2),
            "2026-11-22T11:00:00Z",
        );
        assert_eq!(first, again);
    }

    #[test]
    fn a_failure_keeps_the_last_guest_status_and_flips_ready() {
        let good = desired_status(
            &parent(json!(null)),
            Some(&json!({"phase": "Running"})),
            &Readiness::reconciled(2),
            "2026-11-22T10:00:00Z",
        );
        let failed = desired_status(
            &parent(good),
            None,
            &Readiness::failed("OutOfFuel", "guest ran out of fuel"),
            "2026-11-22T11:00:00Z",
        );
        assert_eq!(failed["phase"], "Running");
        let ready = find_ready(&failed).unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "OutOfFuel");
        assert_eq!(ready["lastTransitionTime"], "2026-11-22T11:00:00Z");
    }
}
