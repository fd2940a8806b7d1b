//! Checks the shape of every desired object before anything could be applied.
//! All or nothing: one bad object rejects the whole response.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::runtime::Desired;

/// An object's `apiVersion` and `kind`, e.g. `apps/v1` + `Deployment`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRef {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// The kind.
    pub kind: String,
}

impl TypeRef {
    /// Parses `apps/v1/Deployment` or `v1/Service`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.rsplit_once('/') {
            Some((api_version, kind)) if !api_version.is_empty() && !kind.is_empty() => Ok(Self {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            }),
            _ => Err(format!(
                "`{text}` is not a kind; write it as apiVersion/Kind, e.g. `apps/v1/Deployment` or `v1/Service`"
            )),
        }
    }

    fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

/// What desired objects must satisfy beyond their basic shape.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Kinds the guest may produce; `None` allows any.
    pub allowed_kinds: Option<Vec<TypeRef>>,
}

/// The first problem found in a response; nothing of it may be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// A required field is missing or not a non-empty string.
    #[error("child #{index}: `{field}` is missing or not a non-empty string")]
    MissingField {
        /// 1-based position in the response.
        index: usize,
        /// The field, e.g. `metadata.name`.
        field: &'static str,
    },
    /// A name or namespace Kubernetes would refuse.
    #[error(
        "child #{index} ({object}): {field} `{value}` is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most {max} characters)"
    )]
    InvalidName {
        /// 1-based position.
        index: usize,
        /// The object, as `apiVersion/Kind name`.
        object: String,
        /// `metadata.name` or `metadata.namespace`.
        field: &'static str,
        /// The offending value.
        value: String,
        /// The length limit for that field.
        max: usize,
    },
    /// The same object twice.
    #[error("child #{index} ({object}) duplicates child #{first}")]
    Duplicate {
        /// 1-based position of the second occurrence.
        index: usize,
        /// 1-based position of the first.
        first: usize,
        /// The object.
        object: String,
    },
    /// A kind outside the allowlist.
    #[error("child #{index} ({object}): kind `{kind}` is not allowed; allowed kinds: {allowed}")]
    KindNotAllowed {
        /// 1-based position.
        index: usize,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
        /// The allowlist, comma-separated.
        allowed: String,
    },
}

/// Validates every child of `desired` and defaults its namespace to the
/// parent's. Returns the children ready to apply, or the first problem.
pub fn validate(
    mut desired: Desired,
    parent: &Value,
    rules: &Rules,
) -> Result<Desired, ValidationError> {
    let parent_namespace = parent["metadata"]["namespace"].as_str();
    let mut seen = HashMap::new();
    for (position, child) in desired.children.iter_mut().enumerate() {
        let index = position + 1;
        let kind = TypeRef {
            api_version: required(child, &["apiVersion"], index, "apiVersion")?,
            kind: required(child, &["kind"], index, "kind")?,
        };
        let name = required(child, &["metadata", "name"], index, "metadata.name")?;
        let object = format!("{kind} `{name}`");
        check_name(&name, 253, index, &object, "metadata.name")?;
        if let Some(allowed) = rules
            .allowed_kinds
            .as_ref()
            .filter(|allowed| !allowed.contains(&kind))
        {
            return Err(ValidationError::KindNotAllowed {
                index,
                object,
                kind,
                allowed: allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let namespace = match child["metadata"]["namespace"].as_str() {
            Some(namespace) => {
                check_name(namespace, 63, index, &object, "metadata.namespace")?;
                Some(namespace.to_string())
            }
            None => {
                if let Some(namespace) = parent_namespace {
                    child["metadata"]["namespace"] = Value::from(namespace);
                }
                parent_namespace.map(str::to_string)
            }
        };
        let identity = (kind.group().to_string(), kind.kind.clone(), namespace, name);
        if let Some(first) = seen.insert(identity, index) {
            return Err(ValidationError::Duplicate {
                index,
                first,
                object,
            });
        }
    }
    Ok(desired)
}

fn required(
    child: &Value,
    path: &[&str],
    index: usize,
    field: &'static str,
) -> Result<String, ValidationError> {
    path.iter()
        .try_fold(child, |value, key| value.get(key))
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
        .ok_or(ValidationError::MissingField { index, field })
}

/// A DNS-1123 subdomain: what Kubernetes accepts for most object names.
fn check_name(
    value: &str,
    max: usize,
    index: usize,
    object: &str,
    field: &'static str,
) -> Result<(), ValidationError> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alphanumeric =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = value.len() <= max
        && value.chars().all(valid_char)
        && alphanumeric(value.chars().next())
        && alphanumeric(value.chars().last());
    if valid {
        Ok(())
    } else {
        Err(ValidationError::InvalidName {
            index,
            object: object.to_string(),
            field,
            value: value.to_string(),
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn desired(children: Vec<Value>) -> Desired {
        Desired {
            children,
            status: None,
            requeue_after: None,
            events: Vec::new(),
        }
    }

    fn parent() -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop"}})
    }

    fn service(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}})
    }

    #[test]
    fn namespace_defaults_to_the_parents() {
        let mut other = service("b");
        other["metadata"]["namespace"] = json!("elsewhere");
        let valid = validate(
            desired(vec![service("a"), other]),
            &parent(),
            &Rules::default(),
        )
        .unwrap();
        assert_eq!(valid.children[0]["metadata"]["namespace"], "shop");
        assert_eq!(valid.children[1]["metadata"]["namespace"], "elsewhere");
    }

    #[test]
    fn missing_fields_are_named() {
        for (field, path) in [
            ("apiVersion", "/apiVersion"),
            ("kind", "/kind"),
            ("metadata.name", "/metadata/name"),
        ] {
            let mut child = service("a");
            *child.pointer_mut(path).unwrap() = json!("");
            let error = validate(
                desired(vec![service("ok"), child]),
                &parent(),
                &Rules::default(),
            )
            .unwrap_err();
            assert_eq!(error, ValidationError::MissingField { index: 2, field });
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["Web", "web_1", "-web", "web-", &"a".repeat(254)] {
            let error =
                validate(desired(vec![service(bad)]), &parent(), &Rules::default()).unwrap_err();
            assert!(
                matches!(
                    error,
                    ValidationError::InvalidName {
                        field: "metadata.name",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn duplicates_are_refused_even_across_versions() {
        let mut v2 = service("a");
        v2["apiVersion"] = json!("v2");
        let error = validate(
            desired(vec![service("a"), v2]),
            &parent(),
            &Rules::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #2 (v2/Service `a`) duplicates child #1"
        );
    }

    #[test]
    fn kinds_outside_the_allowlist_are_refused() {
        let rules = Rules {
            allowed_kinds: Some(vec![TypeRef::parse("apps/v1/Deployment").unwrap()]),
        };
        let error = validate(desired(vec![service("a")]), &parent(), &rules).unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #1 (v1/Service `a`): kind `v1/Service` is not allowed; allowed kinds: apps/v1/Deployment"
        );
    }

    #[test]
    fn type_refs_parse_with_and_without_group() {
        assert_eq!(
            TypeRef::parse("apps/v1/Deployment").unwrap().group(),
            "apps"
        );
        assert_eq!(TypeRef::parse("v1/Service").unwrap().group(), "");
        assert!(TypeRef::parse("Service").is_err());
        assert!(TypeRef::parse("v1/").is_err());
    }
}
