//! The write plan: what one pass will write, computed before anything is
//! written, as a pure function of the desired children (validated), the
//! observed ones (from the caches), ownership and each child kind's rules
//! (`spec.children[]`: update strategy, delete policy). `write` checks the
//! whole plan with a server-side dry run, then executes it.

use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use serde_json::Value;

use super::apply::{self, Owner};
use super::kinds::Kind;
use super::prune;
use super::rollout;
use crate::crd::{ChildSpec, DeletePolicy, UpdateMethod};

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
    /// Delete a child that differs from its desired state and create it
    /// anew (update method `Recreate`).
    Recreate {
        /// Index of its kind among the reconciler's child kinds.
        kind: usize,
        /// The desired child, stamped.
        child: Value,
        /// The observed object, deleted first.
        before: &'a Arc<DynamicObject>,
    },
    /// Delete an owned child no longer desired (delete policy `Delete`).
    Prune {
        /// Index of its kind among the reconciler's child kinds.
        kind: usize,
        /// The observed object.
        object: &'a Arc<DynamicObject>,
    },
    /// Leave an owned child no longer desired in place, without the host's
    /// labels and the parent's ownerReference (delete policy `Orphan`).
    Release {
        /// Index of its kind among the reconciler's child kinds.
        kind: usize,
        /// The observed object.
        object: &'a Arc<DynamicObject>,
    },
}

impl Step<'_> {
    /// The child written, as `Kind namespace/name`; `kind` is the step's.
    pub fn describe(&self, kind: &Kind) -> String {
        let (name, namespace) = match self {
            Self::Apply { child, .. } | Self::Recreate { child, .. } => apply::name_of(child),
            Self::Prune { object, .. } | Self::Release { object, .. } => (
                object.metadata.name.as_deref().unwrap_or_default(),
                object.metadata.namespace.as_deref(),
            ),
        };
        apply::describe(kind, namespace, name)
    }

    /// Index of the step's kind among the reconciler's child kinds.
    pub fn kind(&self) -> usize {
        match self {
            Self::Apply { kind, .. }
            | Self::Recreate { kind, .. }
            | Self::Prune { kind, .. }
            | Self::Release { kind, .. } => *kind,
        }
    }
}

/// A desired child the plan leaves as it is for now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// `Kind namespace/name`.
    pub child: String,
    /// Why it is not written in this pass.
    pub why: HeldBecause,
}

/// Why a desired child that differs from the observed one is not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldBecause {
    /// Its kind's update method is `OnDelete`: it changes only once
    /// someone deletes it.
    OnDelete,
    /// Its kind rolls one child at a time, and `child` is not ready yet.
    Rolling {
        /// `Kind namespace/name` of the child waited for.
        child: String,
        /// Why it is not ready.
        why: String,
        /// Whether that child is changed by this very pass.
        changed_now: bool,
    },
    /// The object is still being deleted (a recreate in progress).
    Deleting,
}

/// How soon a pass that waits for its own write (a child it changed or is
/// deleting) looks again: the watch events of the host's own writes trigger
/// nothing.
const RECHECK_OWN_WRITE: Duration = Duration::from_secs(1);
/// How soon a pass that waits for a child someone else is bringing to
/// readiness looks again, in case no status change announces it (the
/// child's status changes trigger a pass by themselves).
const RECHECK_READINESS: Duration = Duration::from_secs(30);

impl HeldBecause {
    /// Whether the parent is still on its way (a rollout or a recreate),
    /// rather than left as it is on purpose (`OnDelete`).
    pub fn is_waiting(&self) -> bool {
        !matches!(self, Self::OnDelete)
    }

    /// When the host should look again by itself, if at all.
    pub fn recheck_after(&self) -> Option<Duration> {
        match self {
            Self::OnDelete => None,
            Self::Deleting
            | Self::Rolling {
                changed_now: true, ..
            } => Some(RECHECK_OWN_WRITE),
            Self::Rolling { .. } => Some(RECHECK_READINESS),
        }
    }
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let child = &self.child;
        match &self.why {
            HeldBecause::OnDelete => write!(
                f,
                "{child} differs from its desired state but is updated only when deleted (OnDelete)"
            ),
            HeldBecause::Rolling {
                child: busy, why, ..
            } => {
                write!(f, "{child} waits for {busy} to be ready ({why})")
            }
            HeldBecause::Deleting => write!(f, "{child} is being deleted, to be created anew"),
        }
    }
}

/// Every write of one pass, applies first, then prunes and releases.
#[derive(Debug, Default, PartialEq)]
pub struct WritePlan<'a> {
    /// The writes.
    pub steps: Vec<Step<'a>>,
    /// Desired children already as desired (no write).
    pub current: usize,
    /// Desired children left as they are for now.
    pub held: Vec<Held>,
}

/// A desired child of a kind the host does not watch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "child kind {0} is allowed by the policy but not listed in spec.children, so the host cannot track it"
)]
pub struct KindNotWatched(pub String);

/// The reconciler's child kinds as the planner needs them: each resolved
/// kind with its rules, in `spec.children` order.
#[derive(Debug, Clone, Copy)]
pub struct ChildKinds<'a> {
    /// The kinds, as discovery resolved them.
    pub kinds: &'a [Kind],
    /// Their rules, in the same order.
    pub rules: &'a [ChildSpec],
}

impl ChildKinds<'_> {
    /// Index of the kind of `object` (JSON with `apiVersion` and `kind`).
    pub fn position(&self, object: &Value) -> Option<usize> {
        self.kinds.iter().position(|kind| {
            kind.resource.api_version == object["apiVersion"]
                && kind.resource.kind == object["kind"]
        })
    }

    fn update_method(&self, position: usize) -> UpdateMethod {
        self.rules
            .get(position)
            .map(ChildSpec::update_method)
            .unwrap_or_default()
    }

    fn delete_policy(&self, position: usize) -> DeletePolicy {
        self.rules
            .get(position)
            .map(|rules| rules.delete_policy)
            .unwrap_or_default()
    }
}

/// The plan that makes the observed children of `owner.parent` (one list
/// per kind) equal to `desired`, as each kind's rules allow.
pub fn plan<'a>(
    kinds: ChildKinds,
    observed: &'a [Vec<Arc<DynamicObject>>],
    desired: &[Value],
    owner: &Owner,
) -> Result<WritePlan<'a>, KindNotWatched> {
    let mut plan = WritePlan::default();
    // Per kind: changes of existing children, for the rolling methods.
    let mut updates: Vec<Vec<Step<'a>>> = vec![Vec::new(); kinds.kinds.len()];
    for child in desired {
        let position = kinds
            .position(child)
            .ok_or_else(|| KindNotWatched(type_of(child)))?;
        let kind = &kinds.kinds[position];
        let mut child = child.clone();
        apply::stamp(&mut child, kind, owner);
        let (name, namespace) = apply::name_of(&child);
        let before = observed[position].iter().find(|o| {
            o.metadata.name.as_deref() == Some(name) && o.metadata.namespace.as_deref() == namespace
        });
        if before.is_some_and(|o| apply::is_current(o, &child)) {
            plan.current += 1;
            continue;
        }
        let Some(before) = before else {
            plan.steps.push(Step::Apply {
                kind: position,
                child,
                before: None,
                drift: false,
            });
            continue;
        };
        let describe = || {
            apply::describe(
                kind,
                before.metadata.namespace.as_deref(),
                before.metadata.name.as_deref().unwrap_or_default(),
            )
        };
        let method = kinds.update_method(position);
        if before.metadata.deletion_timestamp.is_some() && method != UpdateMethod::OnDelete {
            plan.held.push(Held {
                child: describe(),
                why: HeldBecause::Deleting,
            });
            continue;
        }
        let step = match method {
            UpdateMethod::OnDelete => {
                plan.held.push(Held {
                    child: describe(),
                    why: HeldBecause::OnDelete,
                });
                continue;
            }
            method if method.recreates() => Step::Recreate {
                kind: position,
                child,
                before,
            },
            _ => Step::Apply {
                kind: position,
                drift: apply::drifted(before, &child),
                child,
                before: Some(before),
            },
        };
        if method.is_rolling() {
            updates[position].push(step);
        } else {
            plan.steps.push(step);
        }
    }
    for (position, changes) in updates.into_iter().enumerate() {
        roll(
            &kinds.kinds[position],
            &observed[position],
            changes,
            &mut plan,
        );
    }
    for (position, (kind, observed)) in kinds.kinds.iter().zip(observed).enumerate() {
        for object in prune::stale(kind, observed, desired, owner.key, owner.parent, owner.kind) {
            plan.steps.push(match kinds.delete_policy(position) {
                DeletePolicy::Delete => Step::Prune {
                    kind: position,
                    object,
                },
                DeletePolicy::Orphan => Step::Release {
                    kind: position,
                    object,
                },
            });
        }
    }
    Ok(plan)
}

/// A rolling kind changes at most one existing child per pass, and none
/// while one of its children is not ready: the first change proceeds only
/// when every observed child of the kind is ready; the others wait.
fn roll<'a>(
    kind: &Kind,
    observed: &[Arc<DynamicObject>],
    changes: Vec<Step<'a>>,
    plan: &mut WritePlan<'a>,
) {
    let busy = observed.iter().find_map(|child| {
        rollout::not_ready(child).map(|why| {
            let name = child.metadata.name.as_deref().unwrap_or_default();
            (
                apply::describe(kind, child.metadata.namespace.as_deref(), name),
                why,
            )
        })
    });
    let mut changes = changes.into_iter();
    let mut waiting_for = busy.map(|(child, why)| (child, why, false));
    if waiting_for.is_none()
        && let Some(first) = changes.next()
    {
        let child = first.describe(kind);
        waiting_for = Some((child, "being changed now".to_string(), true));
        plan.steps.push(first);
    }
    let Some((busy, why, changed_now)) = waiting_for else {
        return;
    };
    for change in changes {
        plan.held.push(Held {
            child: change.describe(kind),
            why: HeldBecause::Rolling {
                child: busy.clone(),
                why: why.clone(),
                changed_now,
            },
        });
    }
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
                Step::Recreate { child, .. } => (
                    "recreate",
                    child["metadata"]["name"].as_str().unwrap().to_string(),
                ),
                Step::Prune { object, .. } => ("prune", object.metadata.name.clone().unwrap()),
                Step::Release { object, .. } => ("release", object.metadata.name.clone().unwrap()),
            })
            .collect()
    }

    /// One ConfigMap kind with `rules` (JSON of a `spec.children[]` entry).
    fn rules(extra: Value) -> ChildSpec {
        let mut value = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn config_maps() -> [Kind; 1] {
        [kind("", "ConfigMap")]
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
            let kinds = ChildKinds {
                kinds: &config_maps(),
                rules: &[],
            };
            let plan = plan(kinds, &observed, &wanted, &owner).unwrap();
            let expected: Vec<(&str, String)> =
                steps.iter().map(|(s, n)| (*s, n.to_string())).collect();
            assert_eq!(summary(&plan), expected, "{wanted:?}");
            assert_eq!(plan.current, current, "{wanted:?}");
        }
        let kinds = ChildKinds {
            kinds: &config_maps(),
            rules: &[],
        };
        let error = plan(
            kinds,
            &observed,
            &[json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})],
            &owner,
        )
        .unwrap_err();
        assert_eq!(error, KindNotWatched("v1/Secret".into()));
    }

    /// A parent `p` of reconciler `shop/r`, as the owner of its children.
    struct Fixture {
        parent: DynamicObject,
        parent_kind: Kind,
        key: ReconcilerKey,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                parent: serde_json::from_value(json!({
                    "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
                    "metadata": {"name": "p", "namespace": "shop", "uid": "p1"},
                }))
                .unwrap(),
                parent_kind: kind("example.sous.dev", "MyApp"),
                key: ReconcilerKey::namespaced("shop", "r"),
            }
        }

        fn owner(&self) -> Owner<'_> {
            Owner {
                parent: &self.parent,
                kind: &self.parent_kind,
                key: &self.key,
            }
        }

        /// The object the host applied for `desired`, with `status`.
        fn observed(&self, desired: &Value, status: Value) -> Arc<DynamicObject> {
            let mut object = (*applied(desired, &self.owner())).clone();
            object.data["status"] = status;
            Arc::new(object)
        }

        fn plan<'a>(
            &self,
            rules: ChildSpec,
            observed: &'a [Vec<Arc<DynamicObject>>],
            desired: &[Value],
        ) -> WritePlan<'a> {
            let kinds = ChildKinds {
                kinds: &config_maps(),
                rules: &[rules],
            };
            plan(kinds, observed, desired, &self.owner()).unwrap()
        }
    }

    fn held(plan: &WritePlan) -> Vec<String> {
        plan.held.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn each_update_method_decides_what_a_changed_child_gets() {
        let fixture = Fixture::new();
        let observed = vec![vec![
            fixture.observed(&desired("a", "1"), Value::Null),
            fixture.observed(&desired("b", "1"), Value::Null),
        ]];
        let wanted = [desired("a", "2"), desired("b", "1"), desired("c", "1")];
        let table = [
            ("InPlace", vec![("apply", "a"), ("apply", "c")], vec![]),
            ("Recreate", vec![("recreate", "a"), ("apply", "c")], vec![]),
            (
                "OnDelete",
                vec![("apply", "c")],
                vec![
                    "ConfigMap shop/a differs from its desired state but is updated only when deleted (OnDelete)",
                ],
            ),
        ];
        for (method, steps, expected_held) in table {
            let plan = fixture.plan(
                rules(json!({"updateStrategy": {"method": method}})),
                &observed,
                &wanted,
            );
            let expected: Vec<(&str, String)> =
                steps.iter().map(|(s, n)| (*s, n.to_string())).collect();
            assert_eq!(summary(&plan), expected, "{method}");
            assert_eq!(held(&plan), expected_held, "{method}");
            assert_eq!(plan.current, 1, "{method}");
        }
    }

    #[test]
    fn a_rolling_kind_changes_one_ready_child_at_a_time() {
        let fixture = Fixture::new();
        let ready = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let settling =
            json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Settling"}]});
        let wanted = [
            desired("a", "2"),
            desired("b", "2"),
            desired("c", "2"),
            desired("new", "1"),
        ];
        let all_ready = vec![
            ["a", "b", "c"]
                .map(|n| fixture.observed(&desired(n, "1"), ready.clone()))
                .to_vec(),
        ];
        let plan = fixture.plan(
            rules(json!({"updateStrategy": {"method": "RollingRecreate"}})),
            &all_ready,
            &wanted,
        );
        assert_eq!(
            summary(&plan),
            [("apply", "new".to_string()), ("recreate", "a".to_string())]
        );
        assert_eq!(
            held(&plan),
            [
                "ConfigMap shop/b waits for ConfigMap shop/a to be ready (being changed now)",
                "ConfigMap shop/c waits for ConfigMap shop/a to be ready (being changed now)",
            ]
        );
        // The host changed `a` itself: its own write triggers nothing.
        assert!(
            plan.held
                .iter()
                .all(|held| held.why.recheck_after() == Some(RECHECK_OWN_WRITE))
        );
        // `a` was changed and is not ready yet: nothing else changes.
        let one_settling = vec![vec![
            fixture.observed(&desired("a", "2"), settling),
            fixture.observed(&desired("b", "1"), ready.clone()),
            fixture.observed(&desired("c", "1"), ready.clone()),
        ]];
        let plan = fixture.plan(
            rules(json!({"updateStrategy": {"method": "RollingInPlace"}})),
            &one_settling,
            &wanted,
        );
        assert_eq!(summary(&plan), [("apply", "new".to_string())]);
        assert_eq!(
            held(&plan),
            [
                "ConfigMap shop/b waits for ConfigMap shop/a to be ready (Ready=False (Settling))",
                "ConfigMap shop/c waits for ConfigMap shop/a to be ready (Ready=False (Settling))",
            ]
        );
        assert!(plan.held.iter().all(|held| held.why.is_waiting()));
        // Someone else brings `a` to readiness; its status changes trigger
        // passes, so the host looks again by itself only as a safety net.
        assert!(
            plan.held
                .iter()
                .all(|held| held.why.recheck_after() == Some(RECHECK_READINESS))
        );
        // Once `a` is ready, `b` goes, in place.
        let a_ready = vec![vec![
            fixture.observed(&desired("a", "2"), ready.clone()),
            fixture.observed(&desired("b", "1"), ready.clone()),
            fixture.observed(&desired("c", "1"), ready),
        ]];
        let plan = fixture.plan(
            rules(json!({"updateStrategy": {"method": "RollingInPlace"}})),
            &a_ready,
            &wanted,
        );
        assert_eq!(
            summary(&plan),
            [("apply", "new".to_string()), ("apply", "b".to_string())]
        );
        assert_eq!(held(&plan).len(), 1);
    }

    #[test]
    fn the_delete_policy_prunes_or_releases_and_a_deleting_child_is_waited_for() {
        let fixture = Fixture::new();
        let mut going = (*fixture.observed(&desired("going", "1"), Value::Null)).clone();
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let observed = vec![vec![
            fixture.observed(&desired("stale", "1"), Value::Null),
            Arc::new(going),
        ]];
        let wanted = [desired("going", "2")];
        let prune = fixture.plan(
            rules(json!({"updateStrategy": {"method": "Recreate"}})),
            &observed,
            &wanted,
        );
        assert_eq!(summary(&prune), [("prune", "stale".to_string())]);
        assert_eq!(
            held(&prune),
            ["ConfigMap shop/going is being deleted, to be created anew"]
        );
        let release = fixture.plan(rules(json!({"deletePolicy": "Orphan"})), &observed, &wanted);
        assert_eq!(summary(&release), [("release", "stale".to_string())]);
    }
}
