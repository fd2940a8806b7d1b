//! Related requests: the objects a guest asks to read at run time, how they
//! are checked, and which objects each one selects.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crd::{namespace_wanted, parse_selector};
use crate::validate::TypeRef;

/// One request of a guest for related objects (`related-request` of the WIT).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelatedQuery {
    /// `group/version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Only this namespace (`*`: every one); none: the parent's, or every
    /// namespace for a cluster-scoped parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only the object of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A label selector in `kubectl -l` syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

impl RelatedQuery {
    /// The requested type.
    pub fn type_ref(&self) -> TypeRef {
        TypeRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
        }
    }

    /// The parsed label selector (empty selects everything).
    pub fn label_selector(&self) -> Result<Selector, String> {
        parse_selector(self.selector.as_deref().unwrap_or_default())
    }

    /// Whether `object` answers this request, for a parent in
    /// `parent_namespace`. `namespaced` tells whether the kind is.
    pub fn selects(
        &self,
        selector: &Selector,
        namespaced: bool,
        parent_namespace: Option<&str>,
        object: &Value,
    ) -> bool {
        let metadata = &object["metadata"];
        let wanted_namespace = namespace_wanted(self.namespace.as_deref(), parent_namespace);
        let labels: BTreeMap<String, String> =
            serde_json::from_value(metadata["labels"].clone()).unwrap_or_default();
        object["kind"].as_str() == Some(&self.kind)
            && same_group(
                object["apiVersion"].as_str().unwrap_or_default(),
                &self.api_version,
            )
            && (!namespaced
                || wanted_namespace.is_none()
                || metadata["namespace"].as_str() == wanted_namespace)
            && self
                .name
                .as_deref()
                .is_none_or(|name| metadata["name"].as_str() == Some(name))
            && selector.matches(&labels)
    }
}

/// Whether two `apiVersion`s name the same group (any version).
fn same_group(a: &str, b: &str) -> bool {
    let group = |v: &str| {
        v.rsplit_once('/')
            .map_or("", |(group, _)| group)
            .to_string()
    };
    group(a) == group(b)
}

/// The objects of `candidates` that `queries` select and `present` lacks
/// (compared by kind, namespace and name), each once.
pub fn resolve<'a>(
    queries: &[RelatedQuery],
    candidates: impl IntoIterator<Item = (&'a Value, bool)>,
    parent_namespace: Option<&str>,
    present: &[Value],
) -> Vec<Value> {
    let selectors: Vec<(&RelatedQuery, Selector)> = queries
        .iter()
        .filter_map(|query| Some((query, query.label_selector().ok()?)))
        .collect();
    let mut seen: Vec<(String, String, String)> = present.iter().map(identity).collect();
    let mut found = Vec::new();
    for (object, namespaced) in candidates {
        let wanted = selectors
            .iter()
            .any(|(query, selector)| query.selects(selector, namespaced, parent_namespace, object));
        let id = identity(object);
        if wanted && !seen.contains(&id) {
            seen.push(id);
            found.push(object.clone());
        }
    }
    found
}

fn identity(object: &Value) -> (String, String, String) {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    (
        text(&object["kind"]),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn query(namespace: Option<&str>, name: Option<&str>, selector: Option<&str>) -> RelatedQuery {
        RelatedQuery {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: namespace.map(Into::into),
            name: name.map(Into::into),
            selector: selector.map(Into::into),
        }
    }

    fn config_map(namespace: &str, name: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}})
    }

    #[test]
    fn a_request_selects_by_namespace_name_and_labels() {
        let objects = [
            config_map("shop", "a", "web"),
            config_map("shop", "b", "db"),
            config_map("other", "c", "web"),
        ];
        let names = |q: RelatedQuery| -> Vec<Value> {
            resolve(&[q], objects.iter().map(|o| (o, true)), Some("shop"), &[])
                .iter()
                .map(|o| o["metadata"]["name"].clone())
                .collect()
        };
        assert_eq!(names(query(None, None, None)), [json!("a"), json!("b")]);
        assert_eq!(
            names(query(Some("*"), None, Some("app=web"))),
            [json!("a"), json!("c")]
        );
        assert_eq!(names(query(Some("other"), None, None)), [json!("c")]);
        assert_eq!(names(query(None, Some("b"), None)), [json!("b")]);
        let secret = RelatedQuery {
            kind: "Secret".into(),
            ..query(None, None, None)
        };
        assert!(names(secret).is_empty());
    }

    #[test]
    fn objects_already_present_or_asked_twice_come_once() {
        let objects = [
            config_map("shop", "a", "web"),
            config_map("shop", "b", "web"),
        ];
        let found = resolve(
            &[query(None, None, None), query(None, Some("b"), None)],
            objects.iter().map(|o| (o, true)),
            Some("shop"),
            &[objects[0].clone()],
        );
        assert_eq!(found, [objects[1].clone()]);
    }
}
