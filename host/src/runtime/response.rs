//! Turns a guest's raw answer (JSON text) into checked host values.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::bindings::current::sous::reconciler::types as wit;
use super::error::CallError;
use super::limits::Limits;
use crate::related::RelatedQuery;

/// A Kubernetes Event the guest asked for, recorded on the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GuestEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// UpperCamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// The desired state for one parent, as answered by `reconcile`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Every desired child, each a JSON object.
    pub children: Vec<Value>,
    /// The guest's part of the parent's `.status`, if it set one.
    pub status: Option<Value>,
    /// When to call again regardless of changes.
    pub requeue_after: Option<Duration>,
    /// Events to record on the parent.
    pub events: Vec<GuestEvent>,
    /// The complete set of labels the reconciler sets on the parent; none
    /// leaves them alone.
    pub parent_labels: Option<BTreeMap<String, String>>,
    /// The complete set of annotations it sets on the parent.
    pub parent_annotations: Option<BTreeMap<String, String>>,
    /// Fields for objects the reconciler does not own, each a JSON object.
    pub patches: Vec<Value>,
    /// More related objects the guest wants to read.
    pub related_requests: Vec<RelatedQuery>,
}

/// The answer to `finalize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalized {
    /// Cleanup is complete.
    pub done: bool,
    /// When to call again if not done.
    pub requeue_after: Option<Duration>,
    /// Events to record on the parent.
    pub events: Vec<GuestEvent>,
}

/// Checks the size and shape of a `reconcile` answer.
pub fn desired(response: wit::Response, limits: &Limits) -> Result<Desired, CallError> {
    let entries_size = |entries: &Option<Vec<(String, String)>>| {
        entries
            .iter()
            .flatten()
            .map(|(key, value)| key.len() + value.len())
            .sum::<usize>()
    };
    let bytes = response.children.iter().map(String::len).sum::<usize>()
        + response.status.as_ref().map_or(0, String::len)
        + events_size(&response.events)
        + entries_size(&response.parent_labels)
        + entries_size(&response.parent_annotations)
        + response.patches.iter().map(String::len).sum::<usize>()
        + response
            .related_requests
            .iter()
            .map(|request| {
                [&request.namespace, &request.name, &request.selector]
                    .iter()
                    .map(|text| text.as_ref().map_or(0, String::len))
                    .sum::<usize>()
                    + request.api_version.len()
                    + request.kind.len()
            })
            .sum::<usize>();
    if bytes > limits.max_response_bytes {
        return Err(CallError::ResponseTooLarge {
            bytes,
            limit: limits.max_response_bytes,
        });
    }
    let objects = response.children.len() + response.patches.len();
    if objects > limits.max_objects {
        return Err(CallError::TooManyObjects {
            count: objects,
            limit: limits.max_objects,
        });
    }
    let children = response
        .children
        .iter()
        .enumerate()
        .map(|(index, text)| json_object(text, &format!("child #{}", index + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let status = response
        .status
        .as_deref()
        .map(|text| json_object(text, "status"))
        .transpose()?;
    let patches = response
        .patches
        .iter()
        .enumerate()
        .map(|(index, text)| json_object(text, &format!("patch #{}", index + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Desired {
        children,
        status,
        requeue_after: response.requeue_after_ms.map(Duration::from_millis),
        events: events(response.events),
        parent_labels: entries(response.parent_labels, "parent label")?,
        parent_annotations: entries(response.parent_annotations, "parent annotation")?,
        patches,
        related_requests: response
            .related_requests
            .into_iter()
            .map(|request| RelatedQuery {
                api_version: request.api_version,
                kind: request.kind,
                namespace: request.namespace,
                name: request.name,
                selector: request.selector,
            })
            .collect(),
    })
}

/// Checks the size of a `finalize` answer.
pub fn finalized(response: wit::FinalizeResponse, limits: &Limits) -> Result<Finalized, CallError> {
    let bytes = events_size(&response.events);
    if bytes > limits.max_response_bytes {
        return Err(CallError::ResponseTooLarge {
            bytes,
            limit: limits.max_response_bytes,
        });
    }
    Ok(Finalized {
        done: response.done,
        requeue_after: response.requeue_after_ms.map(Duration::from_millis),
        events: events(response.events),
    })
}

fn events_size(events: &[wit::Event]) -> usize {
    events
        .iter()
        .map(|event| event.reason.len() + event.message.len())
        .sum()
}

fn events(events: Vec<wit::Event>) -> Vec<GuestEvent> {
    events
        .into_iter()
        .map(|event| GuestEvent {
            event_type: match event.event_type {
                wit::EventType::Normal => "Normal",
                wit::EventType::Warning => "Warning",
            }
            .to_string(),
            reason: event.reason,
            message: event.message,
        })
        .collect()
}

/// Labels or annotations as a map; a key given twice is refused (the guest
/// would not know which value wins).
fn entries(
    entries: Option<Vec<(String, String)>>,
    what: &str,
) -> Result<Option<BTreeMap<String, String>>, CallError> {
    let Some(entries) = entries else {
        return Ok(None);
    };
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        if map.contains_key(&key) {
            return Err(CallError::MalformedResponse(format!(
                "{what} `{key}` is given twice"
            )));
        }
        map.insert(key, value);
    }
    Ok(Some(map))
}

fn json_object(text: &str, what: &str) -> Result<Value, CallError> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(CallError::MalformedResponse(format!(
            "{what} is JSON but not an object (it is {})",
            json_type(&other)
        ))),
        Err(error) => Err(CallError::MalformedResponse(format!(
            "{what} is not valid JSON: {error}"
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(children: &[&str]) -> wit::Response {
        wit::Response {
            children: children.iter().map(|c| c.to_string()).collect(),
            status: Some(r#"{"phase":"Ready"}"#.into()),
            requeue_after_ms: Some(1500),
            events: vec![wit::Event {
                event_type: wit::EventType::Warning,
                reason: "Slow".into(),
                message: "took long".into(),
            }],
            parent_labels: None,
            parent_annotations: None,
            patches: Vec::new(),
            related_requests: Vec::new(),
        }
    }

    #[test]
    fn a_good_response_becomes_values() {
        let desired = desired(response(&[r#"{"kind":"Service"}"#]), &Limits::default()).unwrap();
        assert_eq!(desired.children[0]["kind"], "Service");
        assert_eq!(desired.status.unwrap()["phase"], "Ready");
        assert_eq!(desired.requeue_after, Some(Duration::from_millis(1500)));
        assert_eq!(desired.events[0].event_type, "Warning");
        assert_eq!(desired.parent_labels, None);
        assert!(desired.patches.is_empty() && desired.related_requests.is_empty());
    }

    #[test]
    fn the_fields_of_0_2_become_values() {
        let response = wit::Response {
            parent_labels: Some(vec![("team".into(), "a".into())]),
            parent_annotations: Some(Vec::new()),
            patches: vec![r#"{"kind":"Deployment"}"#.into()],
            related_requests: vec![wit::RelatedRequest {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: None,
                name: Some("settings".into()),
                selector: None,
            }],
            ..response(&[])
        };
        let desired = desired(response, &Limits::default()).unwrap();
        assert_eq!(desired.parent_labels.unwrap()["team"], "a");
        assert_eq!(desired.parent_annotations, Some(BTreeMap::new()));
        assert_eq!(desired.patches[0]["kind"], "Deployment");
        assert_eq!(
            desired.related_requests[0].name.as_deref(),
            Some("settings")
        );
    }

    #[test]
    fn a_label_twice_or_a_patch_not_an_object_is_malformed() {
        let twice = wit::Response {
            parent_labels: Some(vec![("a".into(), "1".into()), ("a".into(), "2".into())]),
            ..response(&[])
        };
        let error = desired(twice, &Limits::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("parent label `a` is given twice"),
            "{error}"
        );
        let bad = wit::Response {
            patches: vec!["{}".into(), "7".into()],
            ..response(&[])
        };
        let error = desired(bad, &Limits::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("patch #2 is JSON but not an object"),
            "{error}"
        );
    }

    #[test]
    fn non_json_and_non_objects_are_named_by_position() {
        let error = desired(response(&["{}", "nope"]), &Limits::default()).unwrap_err();
        assert!(
            error.to_string().contains("child #2 is not valid JSON"),
            "{error}"
        );
        let error = desired(response(&["[1]"]), &Limits::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("child #1 is JSON but not an object (it is an array)")
        );
    }

    #[test]
    fn size_and_count_limits_apply() {
        let limits = Limits {
            max_response_bytes: 20,
            ..Limits::default()
        };
        let error = desired(response(&["{}"]), &limits).unwrap_err();
        assert!(
            matches!(error, CallError::ResponseTooLarge { limit: 20, .. }),
            "{error}"
        );
        let limits = Limits {
            max_objects: 1,
            ..Limits::default()
        };
        let error = desired(response(&["{}", "{}"]), &limits).unwrap_err();
        assert!(matches!(
            error,
            CallError::TooManyObjects { count: 2, limit: 1 }
        ));
    }
}
