//! What earlier steps of a pipeline proposed for a parent.

use serde::Deserialize;
use serde_json::Value;

use crate::Error;

/// The desired state proposed by the earlier steps of a pipeline: the
/// complete set of children and the status so far. Fields the host may add
/// later are ignored.
///
/// A step of a pipeline answers the complete desired state, usually by
/// changing this one: start a [`Response`](crate::Response) from it with
/// `Response::from(desired.clone())` and add, change or drop what this step is
/// about. A reconciler that is not part of a pipeline never sees one
/// ([`Request::desired`](crate::Request::desired) is `None`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Desired {
    /// The children proposed so far, each one complete object.
    #[serde(default)]
    pub children: Vec<Value>,
    /// The parent's `.status` proposed so far, if any step set one.
    #[serde(default)]
    pub status: Option<Value>,
}

impl Desired {
    /// Parses the JSON text `{"children": [...], "status": {...}}` the host
    /// sends; text that is not JSON or not of that shape is a
    /// [`Error::Transient`] naming the problem (the host is at fault, not the
    /// parent).
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Error::transient(format!(
                "the host sent a desired state that is not JSON: {e}"
            ))
        })?;
        let shape = |problem: String| {
            Error::transient(format!(
                "the host sent a desired state that is not {{\"children\": [...], \"status\": {{...}}}}: {problem}"
            ))
        };
        if !value.is_object() {
            let found = match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => unreachable!("checked above"),
            };
            return Err(shape(format!("found {found}")));
        }
        let desired = Self::deserialize(&value).map_err(|e| shape(e.to_string()))?;
        if let Some(index) = desired.children.iter().position(|c| !c.is_object()) {
            return Err(Error::transient(format!(
                "the host sent a desired state whose child {index} is not an object"
            )));
        }
        Ok(desired)
    }

    /// The proposed child of `kind` named `name`, if there is one.
    pub fn child(&self, kind: &str, name: &str) -> Option<&Value> {
        self.children
            .iter()
            .find(|c| c["kind"] == kind && c["metadata"]["name"] == name)
    }

    /// The proposed child of `kind` named `name`, to change in place.
    pub fn child_mut(&mut self, kind: &str, name: &str) -> Option<&mut Value> {
        self.children
            .iter_mut()
            .find(|c| c["kind"] == kind && c["metadata"]["name"] == name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_children_and_status() {
        let desired = Desired::parse(
            r#"{"children": [{"kind": "Service", "metadata": {"name": "web"}}], "status": {"phase": "Ready"}}"#,
        )
        .unwrap();
        assert_eq!(desired.children.len(), 1);
        assert_eq!(desired.status, Some(json!({"phase": "Ready"})));
        assert!(desired.child("Service", "web").is_some());
        assert!(desired.child("Service", "api").is_none());
    }

    #[test]
    fn missing_parts_are_empty_and_unknown_parts_ignored() {
        assert_eq!(Desired::parse("{}").unwrap(), Desired::default());
        assert_eq!(
            Desired::parse(r#"{"later": 1}"#).unwrap(),
            Desired::default()
        );
        let nulls = Desired::parse(r#"{"children": [], "status": null}"#).unwrap();
        assert_eq!(nulls.status, None);
    }

    #[test]
    fn a_proposed_child_changes_in_place() {
        let mut desired =
            Desired::parse(r#"{"children": [{"kind": "Service", "metadata": {"name": "web"}}]}"#)
                .unwrap();
        desired.child_mut("Service", "web").unwrap()["spec"] = json!({"type": "ClusterIP"});
        assert_eq!(desired.children[0]["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn malformed_text_is_a_transient_error_that_says_what() {
        for (text, says) in [
            ("{", "not JSON"),
            (
                "[]",
                "is not {\"children\": [...], \"status\": {...}}: found an array",
            ),
            (r#"{"children": {}}"#, "is not {\"children\""),
            (r#"{"children": ["web"]}"#, "child 0 is not an object"),
        ] {
            match Desired::parse(text) {
                Err(Error::Transient(message)) => {
                    assert!(
                        message.starts_with("the host sent a desired state"),
                        "{message}"
                    );
                    assert!(message.contains(says), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
