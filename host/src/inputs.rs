//! Reading the offline inputs of `sous render` / `sous test`: modules and
//! Kubernetes objects from YAML or JSON files, with errors naming the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::render::Observed;

/// A file that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("`{}`: {problem}", path.display())]
pub struct InputError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl InputError {
    /// An error about `path`.
    pub fn new(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// The bytes of a module file.
pub fn read_module(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError::new(path, format!("cannot read the module: {e}")))
}

fn read_text(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|e| InputError::new(path, format!("cannot read: {e}")))
}

/// Every YAML document (or the one JSON value) in `path`, empty documents skipped.
pub fn read_documents(path: &Path) -> Result<Vec<Value>, InputError> {
    let text = read_text(path)?;
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document)
                .map_err(|e| InputError::new(path, format!("not valid YAML or JSON: {e}")))
        })
        .filter(|document| !matches!(document, Ok(Value::Null)))
        .collect()
}

/// One document of any shape (a config, say).
pub fn read_value(path: &Path) -> Result<Value, InputError> {
    let mut documents = read_documents(path)?;
    match documents.len() {
        1 => Ok(documents.remove(0)),
        0 => Err(InputError::new(path, "is empty")),
        n => Err(InputError::new(
            path,
            format!("has {n} documents; expected one"),
        )),
    }
}

/// The parent: exactly one Kubernetes object with `metadata.name`.
pub fn read_parent(path: &Path) -> Result<Value, InputError> {
    let parent = read_value(path)?;
    check_object(&parent).map_err(|problem| InputError::new(path, problem))?;
    Ok(parent)
}

/// A golden case folder of `sous test`: `parent.yaml`, and when present
/// `observed.yaml` (children), `related.yaml`, `config.yaml` and
/// `desired.yaml` (what earlier pipeline steps proposed).
pub fn read_case(case: &Path) -> Result<Observed, InputError> {
    let optional = |file: &str| {
        let path = case.join(file);
        path.is_file().then_some(path)
    };
    Ok(Observed {
        parent: read_parent(&case.join("parent.yaml"))?,
        children: optional("observed.yaml")
            .map(|p| read_objects(&p))
            .transpose()?
            .unwrap_or_default(),
        related: optional("related.yaml")
            .map(|p| read_objects(&p))
            .transpose()?
            .unwrap_or_default(),
        config: optional("config.yaml")
            .map(|p| read_value(&p))
            .transpose()?,
        desired: optional("desired.yaml")
            .map(|p| read_value(&p))
            .transpose()?,
    })
}

/// The objects a case's related requests may resolve to (`requested.yaml`),
/// none when the file is absent.
pub fn read_requested(case: &Path) -> Result<Vec<Value>, InputError> {
    let path = case.join("requested.yaml");
    if path.is_file() {
        read_objects(&path)
    } else {
        Ok(Vec::new())
    }
}

/// Observed objects: every document, a `kind: List` expanded into its items.
pub fn read_objects(path: &Path) -> Result<Vec<Value>, InputError> {
    let mut objects = Vec::new();
    for document in read_documents(path)? {
        match document {
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                objects.extend(items);
            }
            other => objects.push(other),
        }
    }
    for (index, object) in objects.iter().enumerate() {
        check_object(object).map_err(|problem| {
            InputError::new(path, format!("object #{}: {problem}", index + 1))
        })?;
    }
    Ok(objects)
}

fn check_object(value: &Value) -> Result<(), String> {
    if !value.is_object() {
        return Err("not a YAML or JSON object".into());
    }
    match value["metadata"]["name"].as_str() {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err("has no `metadata.name`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn a_parent_must_be_one_named_object() {
        let good = file("apiVersion: v1\nkind: X\nmetadata: {name: a}\n");
        assert_eq!(read_parent(good.path()).unwrap()["metadata"]["name"], "a");
        for (text, problem) in [
            ("- 1\n- 2\n", "not a YAML or JSON object"),
            ("kind: X\nmetadata: {}\n", "has no `metadata.name`"),
            ("", "is empty"),
            ("a: [\n", "not valid YAML or JSON"),
            (
                "metadata: {name: a}\n---\nmetadata: {name: b}\n",
                "has 2 documents",
            ),
        ] {
            let bad = file(text);
            let error = read_parent(bad.path()).unwrap_err().to_string();
            assert!(error.contains(problem), "{text:?}: {error}");
            assert!(error.contains(&bad.path().display().to_string()));
        }
    }

    #[test]
    fn objects_come_from_documents_and_lists() {
        let objects = file(
            "metadata: {name: a}\n---\nkind: List\nitems:\n- metadata: {name: b}\n- metadata: {name: c}\n---\n",
        );
        let names: Vec<_> = read_objects(objects.path())
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let json = file(r#"{"metadata": {"name": "j"}}"#);
        assert_eq!(read_objects(json.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_missing_module_names_the_file() {
        let error = read_module(Path::new("/no/such/module.wasm"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("`/no/such/module.wasm`: cannot read the module"),
            "{error}"
        );
    }
}
