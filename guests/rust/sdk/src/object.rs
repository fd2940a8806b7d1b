//! Building desired Kubernetes objects.

use serde_json::{Map, Value, json};

/// Starts a desired object of `api_version`/`kind` named `name`. Its namespace
/// defaults to the parent's unless [`ObjectBuilder::namespace`] sets one.
pub fn object(api_version: &str, kind: &str, name: &str) -> ObjectBuilder {
    ObjectBuilder {
        object: json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": { "name": name },
        }),
    }
}

/// A desired object under construction; turns into a [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectBuilder {
    object: Value,
}

impl ObjectBuilder {
    /// Sets `metadata.namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.object["metadata"]["namespace"] = json!(namespace);
        self
    }

    /// Adds one label.
    pub fn label(self, key: &str, value: &str) -> Self {
        self.metadata_entry("labels", key, value)
    }

    /// Adds several labels.
    pub fn labels<'a>(self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        labels
            .into_iter()
            .fold(self, |builder, (key, value)| builder.label(key, value))
    }

    /// Adds every entry of a JSON object as a label, so that one `json!` map
    /// can serve as the labels, the selector and the pod template's labels.
    /// Entries whose value is not a string are skipped.
    pub fn labels_from(self, labels: &Value) -> Self {
        let entries = labels.as_object().into_iter().flatten();
        entries.fold(self, |builder, (key, value)| match value.as_str() {
            Some(value) => builder.label(key, value),
            None => builder,
        })
    }

    /// Adds one annotation.
    pub fn annotation(self, key: &str, value: &str) -> Self {
        self.metadata_entry("annotations", key, value)
    }

    /// Sets `.spec`.
    pub fn spec(self, spec: Value) -> Self {
        self.field("spec", spec)
    }

    /// Sets any top-level field (`data` of a ConfigMap, say).
    pub fn field(mut self, name: &str, value: Value) -> Self {
        self.object[name] = value;
        self
    }

    /// The finished object.
    pub fn build(self) -> Value {
        self.object
    }

    fn metadata_entry(mut self, map: &str, key: &str, value: &str) -> Self {
        let entries = self.object["metadata"]
            .as_object_mut()
            .expect("metadata is always an object")
            .entry(map)
            .or_insert_with(|| Value::Object(Map::new()));
        entries[key] = json!(value);
        self
    }
}

impl From<ObjectBuilder> for Value {
    fn from(builder: ObjectBuilder) -> Self {
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_complete_object() {
        let built = object("v1", "Service", "web")
            .namespace("shop")
            .labels([("app", "web"), ("tier", "front")])
            .labels_from(&json!({"extra": "yes", "ignored": 1}))
            .annotation("note", "hi")
            .spec(json!({"ports": [{"port": 80}]}))
            .build();
        assert_eq!(
            built,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop",
                             "labels": {"app": "web", "tier": "front", "extra": "yes"},
                             "annotations": {"note": "hi"}},
                "spec": {"ports": [{"port": 80}]},
            })
        );
    }
}
