//! Readiness of a child, as a rolling update waits for it: the controller
//! that serves the child has seen its latest generation, and its `Ready` or
//! `Available` condition, when it has conditions, is `True`.

use kube::api::DynamicObject;
use serde_json::Value;

/// Why a child is not ready yet, or `None` when it is.
pub fn not_ready(child: &DynamicObject) -> Option<String> {
    if child.metadata.deletion_timestamp.is_some() {
        return Some("being deleted".to_string());
    }
    let status = &child.data["status"];
    let generation = child.metadata.generation;
    let observed = status["observedGeneration"].as_i64();
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Some(format!(
            "its controller has seen generation {observed} of {generation}"
        ));
    }
    let conditions = status["conditions"].as_array().filter(|c| !c.is_empty())?;
    let readiness: Vec<&Value> = conditions
        .iter()
        .filter(|c| matches!(c["type"].as_str(), Some("Ready" | "Available")))
        .collect();
    if readiness.is_empty() || readiness.iter().any(|c| c["status"] == "True") {
        return None;
    }
    let condition = readiness[0];
    Some(format!(
        "{}={}{}",
        condition["type"].as_str().unwrap_or_default(),
        condition["status"].as_str().unwrap_or("Unknown"),
        condition["reason"]
            .as_str()
            .map(|reason| format!(" ({reason})"))
            .unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(generation: Option<i64>, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "Shard",
            "metadata": {"name": "s", "generation": generation},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn readiness_follows_observed_generation_and_ready_or_available() {
        let table = [
            (object(None, json!(null)), None),
            (object(Some(2), json!({})), None),
            (object(Some(2), json!({"observedGeneration": 2})), None),
            (
                object(Some(3), json!({"observedGeneration": 2})),
                Some("its controller has seen generation 2 of 3"),
            ),
            (
                object(
                    Some(2),
                    json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False", "reason": "Syncing"}]}),
                ),
                Some("Ready=False (Syncing)"),
            ),
            (
                object(
                    Some(2),
                    json!({"conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "False"}]}),
                ),
                None,
            ),
            (
                object(
                    Some(2),
                    json!({"conditions": [{"type": "Progressing", "status": "True"}]}),
                ),
                None,
            ),
        ];
        for (child, expected) in table {
            assert_eq!(not_ready(&child).as_deref(), expected, "{:?}", child.data);
        }
        let mut going = object(None, json!(null));
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert_eq!(not_ready(&going).as_deref(), Some("being deleted"));
    }
}
