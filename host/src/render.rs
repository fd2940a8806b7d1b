//! Offline rendering: one parent and its observed state through a guest, the
//! answer validated exactly as the in-cluster host would, no cluster needed.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::runtime::{
    CallContext, CallError, Finalized, GuestEvent, Limits, LoadedModule, Request,
};
use crate::validate::{self, Rules, ValidationError};

/// What the guest is shown.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The parent object.
    pub parent: Value,
    /// Its children as observed.
    pub children: Vec<Value>,
    /// Related objects.
    pub related: Vec<Value>,
    /// The reconciler's configuration.
    pub config: Option<Value>,
    /// What earlier pipeline steps proposed (`{children, status}`), if any.
    pub desired: Option<Value>,
}

/// A successful render: what the host would apply and record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rendered {
    /// Desired children, validated, namespaces defaulted.
    pub children: Vec<Value>,
    /// The guest's status for the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// Events for the parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<GuestEvent>,
    /// Requeue request in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_ms: Option<u64>,
}

/// Why a render produced nothing to apply.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The guest call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The answer failed validation.
    #[error("response rejected, nothing would be applied: {0}")]
    Validation(#[from] ValidationError),
}

impl RenderError {
    /// UpperCamelCase reason, as used in status conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Call(error) => error.reason(),
            Self::Validation(_) => "InvalidResponse",
        }
    }
}

/// The request the host would send for `observed`.
pub fn request(reconciler: &str, observed: &Observed) -> Request {
    let texts = |objects: &[Value]| objects.iter().map(json_text).collect();
    Request {
        reconciler: reconciler.to_string(),
        parent: json_text(&observed.parent),
        children: texts(&observed.children),
        related: texts(&observed.related),
        config: observed.config.as_ref().map(json_text),
        desired: observed.desired.as_ref().map(json_text),
    }
}

/// JSON text of `value`, written through one buffer (faster than `Display`).
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value always serializes")
}

/// Calls `module` for `observed` under `limits` and validates the answer.
pub fn render(
    module: &LoadedModule,
    reconciler: &str,
    observed: &Observed,
    limits: &Limits,
    rules: &Rules,
) -> Result<Rendered, RenderError> {
    let context = call_context(reconciler, &observed.parent);
    let desired = module.reconcile(&request(reconciler, observed), limits, context)?;
    let desired = validate::validate(desired, &observed.parent, rules)?;
    Ok(Rendered {
        children: desired.children,
        status: desired.status,
        events: desired.events,
        requeue_after_ms: desired
            .requeue_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    })
}

/// Calls `module`'s `finalize` for a parent being deleted.
pub fn finalize(
    module: &LoadedModule,
    reconciler: &str,
    observed: &Observed,
    limits: &Limits,
) -> Result<Finalized, CallError> {
    let context = call_context(reconciler, &observed.parent);
    module.finalize(&request(reconciler, observed), limits, context)
}

/// Names the reconciler and the parent (`namespace/name`) in the guest's records.
fn call_context(reconciler: &str, parent: &Value) -> CallContext {
    let metadata = &parent["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default();
    let parent = match metadata["namespace"].as_str() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    };
    CallContext {
        reconciler: reconciler.into(),
        parent,
    }
}

/// A render's outcome as one value, the form golden files hold: the rendered
/// result, or `{error: {reason, message}}`.
pub fn outcome_value(outcome: &Result<Rendered, RenderError>) -> Value {
    match outcome {
        Ok(rendered) => serde_json::to_value(rendered).expect("rendered results are JSON"),
        Err(error) => {
            json!({ "error": { "reason": error.reason(), "message": error.to_string() } })
        }
    }
}
