//! The write plan: what one pass will write, computed before anything is
//! written, as a pure function of the desired children (validated), the
//! observed ones (from the caches) and ownership. `write` checks the whole
//! plan with a server-side dry run, then executes it.

use std::sync::Arc;

use kube::api::DynamicObject;
use serde_json::Value;

use super::apply::{self, Owner};
use super::kinds::Kind;
use super::prune;

/// One write of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    /// Server-side apply a child that is missing or differs from the
    /// observed one (drift included).
    Apply {
        /// Index of its kind among the reconciler's child kinds.
        kind: usize,
        /// The desired child, stamped with labels, ownerReference and hash.
        child: Value,
        /// The observed object of that name, if any.
        before: Option<&'a Arc<DynamicObject>>,
        /// Whether this restores fields someone else changed since the
        /// host's last write (drift), rather than a new desired state.
        drift: bool,
    },
    /// Delete an owned child no longer desired.
    Prune {
        /// Index of its kind among the reconciler's child kinds.
        kind: usize,
        /// The observed object.
        object: &'a Arc<DynamicObject>,
    },
}

/// Every write of one pass, applies first, then prunes.
#[derive(Debug, Default, PartialEq)]
pub struct WritePlan<'a> {
    /// The writes.
    pub steps: Vec<Step<'a>>,
    /// Desired children already as desired (no write).
    pub current: usize,
}

/// A desired child of a kind the host does not watch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "child kind {0} is allowed by the policy but not listed in spec.children, so the host cannot track it"
)]
pub struct KindNotWatched(pub String);

/// The plan that makes the observed children of `owner.parent` (one list
/// per kind of `kinds`) equal to `desired`.
pub fn plan<'a>(
    kinds: &[Kind],
    observed: &'a [Vec<Arc<DynamicObject>>],
    desired: &[Value],
    owner: &Owner,
) -> Result<WritePlan<'a>, KindNotWatched> {
    let mut plan = WritePlan::default();
    for child in desired {
        let position = kinds
            .iter()
            .position(|kind| {
                kind.resource.api_version == child["apiVersion"]
                    && kind.resource.kind == child["kind"]
            })
            .ok_or_else(|| KindNotWatched(type_of(child)))?;
        let mut child = child.clone();
        apply::stamp(&mut child, &kinds[position], owner);
        let (name, namespace) = (
            child["metadata"]["name"].as_str(),
            child["metadata"]["namespace"].as_str(),
        );
        let before = observed[position].iter().find(|o| {
            o.metadata.name.as_deref() == name && o.metadata.namespace.as_deref() == namespace
        });
        if before.is_some_and(|o| apply::is_current(o, &child)) {
            plan.current += 1;
            continue;
        }
        let drift = before.is_some_and(|o| apply::drifted(o, &child));
        plan.steps.push(Step::Apply {
            kind: position,
            child,
            before,
            drift,
        });
    }
    for (position, (kind, observed)) in kinds.iter().zip(observed).enumerate() {
        for object in prune::stale(kind, observed, desired, owner.key, owner.parent, owner.kind) {
            plan.steps.push(Step::Prune {
                kind: position,
                object,
            });
        }
    }
    Ok(plan)
}

fn type_of(child: &Value) -> String {
    format!(
        "{}/{}",
        child["apiVersion"].as_str().unwrap_or_default(),
        child["kind"].as_str().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;
    use serde_json::json;

    use super::*;
    use crate::controller::labels::{PARENT_UID, RECONCILER};
    use crate::crd::ReconcilerKey;

    fn kind(group: &str, name: &str) -> Kind {
        Kind {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1", name)),
            namespaced: true,
            has_status: false,
        }
    }

    fn desired(name: &str, data: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop"},
            "data": {"k": data},
        })
    }

    /// What the API server would hold after the host applied `desired`.
    fn applied(desired: &Value, owner: &Owner) -> Arc<DynamicObject> {
        let mut child = desired.clone();
        apply::stamp(&mut child, &kind("", "ConfigMap"), owner);
        Arc::new(serde_json::from_value(child).unwrap())
    }

    /// `(step, name)` of every step.
    fn summary(plan: &WritePlan) -> Vec<(&'static str, String)> {
        plan.steps
            .iter()
            .map(|step| match step {
                Step::Apply { child, drift, .. } => (
                    if *drift { "restore" } else { "apply" },
                    child["metadata"]["name"].as_str().unwrap().to_string(),
                ),
                Step::Prune { object, .. } => ("prune", object.metadata.name.clone().unwrap()),
            })
            .collect()
    }

    #[test]
    fn missing_children_are_applied_drifted_restored_current_skipped_stale_pruned() {
        let parent: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "p", "namespace": "shop", "uid": "p1"},
        }))
        .unwrap();
        let (parent_kind, key) = (
            kind("example.sous.dev", "MyApp"),
            ReconcilerKey::namespaced("shop", "r"),
        );
        let owner = Owner {
            parent: &parent,
            kind: &parent_kind,
            key: &key,
        };
        let current = applied(&desired("current", "1"), &owner);
        let mut drifted = (*applied(&desired("drifted", "1"), &owner)).clone();
        drifted.data["data"]["k"] = json!("changed by someone");
        let stale = applied(&desired("stale", "1"), &owner);
        let mut foreign = (*applied(&desired("foreign", "1"), &owner)).clone();
        foreign.metadata.labels = Some(
            [
                (RECONCILER.to_string(), "shop.other".to_string()),
                (PARENT_UID.to_string(), "p1".to_string()),
            ]
            .into(),
        );
        let observed = vec![vec![current, Arc::new(drifted), stale, Arc::new(foreign)]];
        let table = [
            (
                vec![desired("current", "1")],
                vec![("prune", "drifted"), ("prune", "stale")],
                1,
            ),
            (
                vec![
                    desired("current", "1"),
                    desired("drifted", "1"),
                    desired("stale", "1"),
                ],
                vec![("restore", "drifted")],
                2,
            ),
            (
                vec![desired("current", "2"), desired("new", "1")],
                vec![
                    ("apply", "current"),
                    ("apply", "new"),
                    ("prune", "drifted"),
                    ("prune", "stale"),
                ],
                0,
            ),
            (
                vec![],
                vec![
                    ("prune", "current"),
                    ("prune", "drifted"),
                    ("prune", "stale"),
                ],
                0,
            ),
        ];
        for (wanted, steps, current) in table {
            let plan = plan(&[kind("", "ConfigMap")], &observed, &wanted, &owner).unwrap();
            let expected: Vec<(&str, String)> =
                steps.iter().map(|(s, n)| (*s, n.to_string())).collect();
            assert_eq!(summary(&plan), expected, "{wanted:?}");
            assert_eq!(plan.current, current, "{wanted:?}");
        }
        let error = plan(
            &[kind("", "ConfigMap")],
            &observed,
            &[json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})],
            &owner,
        )
        .unwrap_err();
        assert_eq!(error, KindNotWatched("v1/Secret".into()));
    }
}
