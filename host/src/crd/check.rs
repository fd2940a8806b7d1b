//! What the API server's schema cannot say about a spec: selectors that
//! are not selectors, a child kind listed twice. A spec that fails here is
//! refused in the Reconciler's status (`InvalidSpec`) before anything runs.

use std::collections::HashSet;

use super::selector::SelectorError;
use super::spec::{Mode, ReconcilerSpec};

/// Why a spec cannot run as written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// A label selector is malformed.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// A Decorator names a Sous kind as its parent.
    #[error(
        "`spec.mode` is Decorator with parent kind {kind}, a Sous kind: reconcilers are not decorated; choose another parent kind"
    )]
    DecoratedSousKind {
        /// `apiVersion/kind`.
        kind: String,
    },
    /// A child kind appears twice in `spec.children`.
    #[error(
        "`spec.children` lists {kind} twice; list each kind once, with one update strategy, delete policy and adoption rule"
    )]
    DuplicateChildKind {
        /// `apiVersion/kind`.
        kind: String,
    },
}

impl SpecError {
    /// UpperCamelCase reason of the `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        "InvalidSpec"
    }
}

/// Checks `spec` as a whole; the first problem found is the answer.
pub fn check(spec: &ReconcilerSpec) -> Result<(), SpecError> {
    if spec.mode == Mode::Decorator && spec.parent.gvk().group == super::GROUP {
        return Err(SpecError::DecoratedSousKind {
            kind: format!("{}/{}", spec.parent.api_version, spec.parent.kind),
        });
    }
    if let Some(selector) = &spec.parent_selector {
        selector.to_selector("spec.parentSelector")?;
    }
    for (index, related) in spec.related.iter().enumerate() {
        related.label_selector(&format!("spec.related[{index}].selector"))?;
    }
    let mut seen = HashSet::new();
    for child in &spec.children {
        if !seen.insert((child.api_version.as_str(), child.kind.as_str())) {
            return Err(SpecError::DuplicateChildKind {
                kind: format!("{}/{}", child.api_version, child.kind),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(extra: serde_json::Value) -> ReconcilerSpec {
        let mut value = json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
            "module": {"configMapRef": {"name": "m", "key": "k"}},
        });
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_good_spec_passes_and_each_problem_is_named() {
        let good = spec(json!({
            "parentSelector": {"matchLabels": {"team": "blue"}},
            "children": [
                {"apiVersion": "v1", "kind": "ConfigMap", "updateStrategy": {"method": "Recreate"}},
                {"apiVersion": "v1", "kind": "Secret", "deletePolicy": "Orphan", "adopt": "IfUnowned"},
            ],
        }));
        assert_eq!(check(&good), Ok(()));
        let bad_selector = spec(json!({
            "parentSelector": {"matchExpressions": [{"key": "team", "operator": "Near"}]},
        }));
        let error = check(&bad_selector).unwrap_err();
        assert_eq!(error.reason(), "InvalidSpec");
        assert!(
            error
                .to_string()
                .starts_with("`spec.parentSelector.matchExpressions[0]`: unknown operator `Near`"),
            "{error}"
        );
        let twice = spec(json!({
            "children": [{"apiVersion": "v1", "kind": "Secret"}, {"apiVersion": "v1", "kind": "Secret", "deletePolicy": "Orphan"}],
        }));
        assert_eq!(
            check(&twice),
            Err(SpecError::DuplicateChildKind {
                kind: "v1/Secret".into()
            })
        );
    }

    #[test]
    fn a_decorator_of_a_sous_kind_is_refused() {
        let mut decorator = spec(json!({"mode": "Decorator"}));
        assert_eq!(check(&decorator), Ok(()));
        decorator.parent.api_version = "sous.dev/v1alpha1".into();
        decorator.parent.kind = "Reconciler".into();
        let error = check(&decorator).unwrap_err();
        assert_eq!(error.reason(), "InvalidSpec");
        assert!(error.to_string().contains("a Sous kind"), "{error}");
    }

    #[test]
    fn unknown_strategy_names_are_refused_when_the_spec_is_read() {
        let error = serde_json::from_value::<ReconcilerSpec>(json!({
            "parent": {"apiVersion": "v1", "kind": "ConfigMap"},
            "children": [{"apiVersion": "v1", "kind": "Secret", "updateStrategy": {"method": "Sometimes"}}],
            "module": {"configMapRef": {"name": "m", "key": "k"}},
        }))
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `Sometimes`"),
            "{error}"
        );
    }
}
