//! Offline rendering: one parent and its observed state through a guest, the
//! answer validated exactly as the in-cluster host would, no cluster needed.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crd::TypeMeta;
use crate::related::{self, RelatedQuery};
use crate::runtime::{
    CallContext, CallError, Finalized, GuestEvent, Limits, LoadedModule, Request,
};
use crate::validate::{self, Rules, ValidationError};

/// At most this many calls of `reconcile` in one pass settle a guest's
/// related requests.
pub const MAX_ROUNDS: usize = 3;

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
    /// The complete set of labels for the parent, if the guest sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_labels: Option<BTreeMap<String, String>>,
    /// The complete set of annotations for the parent, if the guest sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_annotations: Option<BTreeMap<String, String>>,
    /// Fields for objects the reconciler does not own, validated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Value>,
    /// The related requests the answer settled on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_requests: Vec<RelatedQuery>,
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
    /// The guest asked for different related objects on every call.
    #[error(
        "the related requests did not settle: each of {MAX_ROUNDS} calls asked for other objects; return the same requests on every call that needs them"
    )]
    RelatedNotSettled,
}

impl RenderError {
    /// UpperCamelCase reason, as used in status conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Call(error) => error.reason(),
            Self::Validation(_) => "InvalidResponse",
            Self::RelatedNotSettled => "RelatedNotSettled",
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

/// Where the objects a guest requests come from.
pub trait RelatedObjects {
    /// The objects that may answer `query` (of its kind, within what the
    /// reconciler may read), each with whether its kind is namespaced.
    fn candidates(&self, query: &RelatedQuery) -> Vec<(Value, bool)>;

    /// The requests this parent's previous pass settled on: served in the
    /// first call, so that a guest whose needs did not change is called once.
    fn settled(&self) -> Vec<RelatedQuery> {
        Vec::new()
    }
}

/// No object to request: every related request resolves to nothing.
pub struct NoRelatedObjects;

impl RelatedObjects for NoRelatedObjects {
    fn candidates(&self, _: &RelatedQuery) -> Vec<(Value, bool)> {
        Vec::new()
    }
}

/// Objects given by value (offline: a case's `requested.yaml`), with the
/// cluster-scoped kinds the rules know.
pub struct GivenObjects<'a> {
    /// The objects.
    pub objects: &'a [Value],
    /// The rules that tell which kinds are cluster-scoped.
    pub rules: &'a Rules,
}

impl RelatedObjects for GivenObjects<'_> {
    fn candidates(&self, _: &RelatedQuery) -> Vec<(Value, bool)> {
        self.objects
            .iter()
            .map(|object| {
                let kind = validate::TypeRef::from(&TypeMeta::of_object(object));
                (object.clone(), !self.rules.is_cluster_scoped(&kind))
            })
            .collect()
    }
}

/// Calls `module` for `observed` under `limits` and validates the answer.
/// When the answer requests related objects it had not been given, calls
/// again with them, until the requests settle (at most [`MAX_ROUNDS`] calls).
pub fn render(
    module: &LoadedModule,
    reconciler: &str,
    observed: &Observed,
    limits: &Limits,
    rules: &Rules,
    related: &dyn RelatedObjects,
) -> Result<Rendered, RenderError> {
    let base = request(reconciler, observed);
    let parent_namespace = observed.parent["metadata"]["namespace"].as_str();
    let mut requests = related.settled();
    for _ in 0..MAX_ROUNDS {
        let candidates: Vec<(Value, bool)> = requests
            .iter()
            .flat_map(|query| related.candidates(query))
            .collect();
        let extra = related::resolve(
            &requests,
            candidates
                .iter()
                .map(|(object, namespaced)| (object, *namespaced)),
            parent_namespace,
            &observed.related,
        );
        let context = call_context(reconciler, &observed.parent);
        let desired = if extra.is_empty() {
            module.reconcile(&base, limits, context)?
        } else {
            let mut request = base.clone();
            request.related.extend(extra.iter().map(json_text));
            module.reconcile(&request, limits, context)?
        };
        let desired = validate::validate(desired, &observed.parent, rules)?;
        if same_requests(&desired.related_requests, &requests) {
            return Ok(Rendered {
                children: desired.children,
                status: desired.status,
                events: desired.events,
                requeue_after_ms: desired
                    .requeue_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                parent_labels: desired.parent_labels,
                parent_annotations: desired.parent_annotations,
                patches: desired.patches,
                related_requests: desired.related_requests,
            });
        }
        requests = desired.related_requests;
    }
    Err(RenderError::RelatedNotSettled)
}

/// Whether two sets of requests ask for the same (order and repetition aside).
fn same_requests(a: &[RelatedQuery], b: &[RelatedQuery]) -> bool {
    a.iter().collect::<HashSet<_>>() == b.iter().collect::<HashSet<_>>()
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
