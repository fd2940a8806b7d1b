//! The observed state of one parent, parsed and with accessors.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Desired, Error, wit};

/// What the host observed for one parent.
#[derive(Debug, Clone)]
pub struct Request {
    reconciler: String,
    parent: Value,
    children: Vec<Value>,
    related: Vec<Value>,
    config: Option<Value>,
    desired: Option<Desired>,
}

impl Request {
    /// Builds a request from values, as the host would send it. For tests.
    pub fn new(reconciler: &str, parent: Value, children: Vec<Value>, related: Vec<Value>) -> Self {
        Self {
            reconciler: reconciler.to_string(),
            parent,
            children,
            related,
            config: None,
            desired: None,
        }
    }

    /// The same request with `desired` proposed by earlier pipeline steps,
    /// as the host would send it to a later step. For tests.
    pub fn with_desired(mut self, desired: Desired) -> Self {
        self.desired = Some(desired);
        self
    }

    pub(crate) fn from_wit(raw: wit::Request) -> Result<Self, Error> {
        let parse = |what: &str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| {
                Error::transient(format!("the host sent {what} that is not JSON: {e}"))
            })
        };
        Ok(Self {
            parent: parse("a parent", &raw.parent)?,
            children: raw
                .children
                .iter()
                .map(|c| parse("a child", c))
                .collect::<Result<_, _>>()?,
            related: raw
                .related
                .iter()
                .map(|r| parse("a related object", r))
                .collect::<Result<_, _>>()?,
            config: raw
                .config
                .as_deref()
                .map(|c| parse("a config", c))
                .transpose()?,
            desired: raw.desired.as_deref().map(Desired::parse).transpose()?,
            reconciler: raw.reconciler,
        })
    }

    /// The name of the Reconciler object this call runs for.
    pub fn reconciler(&self) -> &str {
        &self.reconciler
    }

    /// The parent object as observed.
    pub fn parent(&self) -> &Value {
        &self.parent
    }

    /// The parent's `metadata.name`.
    pub fn name(&self) -> &str {
        self.parent["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// The parent's `metadata.namespace` (`None` for a cluster-scoped parent).
    pub fn namespace(&self) -> Option<&str> {
        self.parent["metadata"]["namespace"].as_str()
    }

    /// The parent's `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        self.parent["metadata"]["generation"].as_i64()
    }

    /// The parent's `.spec` as a typed value; a spec that does not fit is
    /// reported as [`Error::Invalid`] naming the problem.
    pub fn spec<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.parent["spec"]).map_err(|e| Error::invalid(format!("spec: {e}")))
    }

    /// One field of `.spec`, typed; missing or mistyped is [`Error::Invalid`].
    pub fn spec_field<T: DeserializeOwned>(&self, field: &str) -> Result<T, Error> {
        T::deserialize(&self.parent["spec"][field])
            .map_err(|e| Error::invalid(format!("spec.{field}: {e}")))
    }

    /// The children the parent owns, as observed.
    pub fn children(&self) -> &[Value] {
        &self.children
    }

    /// The observed child of `kind` named `name`, if it exists.
    pub fn child(&self, kind: &str, name: &str) -> Option<&Value> {
        self.children
            .iter()
            .find(|c| c["kind"] == kind && c["metadata"]["name"] == name)
    }

    /// The related objects, read-only.
    pub fn related(&self) -> &[Value] {
        &self.related
    }

    /// The related objects of `kind`.
    pub fn related_of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> {
        self.related.iter().filter(move |r| r["kind"] == kind)
    }

    /// What the earlier steps of a pipeline proposed for this parent (their
    /// children and status), or `None` when this reconciler serves the parent
    /// alone. A step answers the complete desired state, usually this one
    /// changed: `Response::from(desired.clone())`.
    pub fn desired(&self) -> Option<&Desired> {
        self.desired.as_ref()
    }

    /// The Reconciler's `spec.config`, typed, if one was given.
    pub fn config<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        self.config
            .as_ref()
            .map(|c| T::deserialize(c).map_err(|e| Error::invalid(format!("config: {e}"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(desired: Option<&str>) -> wit::Request {
        wit::Request {
            reconciler: "r".into(),
            parent: json!({"metadata": {"name": "p", "namespace": "ns", "generation": 3}, "spec": {"size": 3}})
                .to_string(),
            children: vec![json!({"kind": "Service", "metadata": {"name": "p"}}).to_string()],
            related: vec![json!({"kind": "Node", "metadata": {"name": "n"}}).to_string()],
            config: Some(r#"{"level": 2}"#.into()),
            desired: desired.map(str::to_string),
        }
    }

    fn request() -> Request {
        Request::from_wit(raw(None)).unwrap()
    }

    #[test]
    fn alone_there_is_no_desired_state() {
        assert_eq!(request().desired(), None);
    }

    #[test]
    fn the_desired_state_of_earlier_steps_is_parsed() {
        let request = Request::from_wit(raw(Some(
            r#"{"children": [{"kind": "Deployment", "metadata": {"name": "p"}}], "status": {"phase": "Ready"}}"#,
        )))
        .unwrap();
        let desired = request.desired().unwrap();
        assert!(desired.child("Deployment", "p").is_some());
        assert_eq!(desired.status, Some(json!({"phase": "Ready"})));
        let built = Request::new("r", json!({}), vec![], vec![]).with_desired(desired.clone());
        assert_eq!(built.desired(), Some(desired));
    }

    #[test]
    fn a_malformed_desired_state_is_a_transient_error() {
        for text in ["{", r#"{"children": "all"}"#] {
            let error = Request::from_wit(raw(Some(text))).unwrap_err();
            assert!(
                matches!(&error, Error::Transient(m) if m.starts_with("the host sent a desired state")),
                "{error}"
            );
        }
    }

    #[test]
    fn accessors_read_the_parent_and_the_observed_objects() {
        let request = request();
        assert_eq!(
            (request.name(), request.namespace(), request.generation()),
            ("p", Some("ns"), Some(3))
        );
        assert_eq!(request.spec_field::<u32>("size").unwrap(), 3);
        assert!(request.child("Service", "p").is_some());
        assert!(request.child("Service", "q").is_none());
        assert_eq!(request.related_of_kind("Node").count(), 1);
        assert_eq!(request.config::<Value>().unwrap().unwrap()["level"], 2);
    }

    #[test]
    fn a_spec_that_does_not_fit_is_invalid_and_says_which_field() {
        let error = request().spec_field::<String>("size").unwrap_err();
        assert!(
            matches!(&error, Error::Invalid(m) if m.starts_with("spec.size: invalid type")),
            "{error}"
        );
    }

    #[test]
    fn a_request_that_is_not_json_is_a_transient_error() {
        let error = Request::from_wit(wit::Request {
            reconciler: "r".into(),
            parent: "{".into(),
            children: vec![],
            related: vec![],
            config: None,
            desired: None,
        })
        .unwrap_err();
        assert!(matches!(error, Error::Transient(_)));
    }
}
