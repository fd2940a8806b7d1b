//! A reconciler's policy: `spec.policy` turned into the limits of every guest
//! call and the rules every answer must satisfy, checked once when the
//! reconciler starts, so a bad policy stops that reconciler and nothing else.
//!
//! Absent fields take the restrictive default (`policies/default.yaml`): the
//! host's default limits, exactly `spec.children` as allowed kinds, the
//! parent's namespace only, no cluster-scoped children.

use std::time::Duration;

use crate::crd::{ChildSpec, PolicySpec, ReconcilerSpec, TypeMeta};
use crate::runtime::Limits;
use crate::validate::{self, NamespaceRule, Rules, TypeRef};

/// The most linear memory a policy may grant one call, in MiB.
///
/// The in-cluster host sizes its engine's memory slots
/// (`EngineOptions::max_memory_bytes`) to this, so every accepted policy fits
/// the engine: a larger grant would be accepted here and then fail as a trap
/// on the first big allocation. 1 GiB is room for interpreted guests (Python,
/// JavaScript) while bounding what one call can pin of the host's memory.
pub const MAX_MEMORY_MIB: u32 = 1024;

/// The longest deadline a policy may grant one call.
///
/// A call holds one of the host's guest-call slots for its whole duration;
/// a deadline of minutes would let one reconciler starve all the others.
/// Work that needs longer should return and requeue.
pub const MAX_DEADLINE: Duration = Duration::from_secs(60);

/// The `allowedNamespaces` entry allowing any namespace.
pub const ANY_NAMESPACE: &str = "*";

/// What a reconciler's guest may use and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Bounds on each call.
    pub limits: Limits,
    /// What each answer must satisfy.
    pub rules: Rules,
}

/// A `spec.policy` the host refuses to run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// A limit of zero: no call could succeed.
    #[error(
        "`policy.{field}` is 0, so no call could succeed; set a positive value, or remove it for the default"
    )]
    Zero {
        /// The field, as written in YAML.
        field: &'static str,
    },
    /// More memory than the host's engine provides.
    #[error(
        "`policy.maxMemoryMib` is {mib}, over the host's ceiling of {MAX_MEMORY_MIB} MiB; lower it"
    )]
    MemoryOverCeiling {
        /// The requested MiB.
        mib: u32,
    },
    /// A deadline long enough to starve other reconcilers.
    #[error(
        "`policy.timeoutMs` is {ms}, over the host's ceiling of {} ms; lower it, and have the guest requeue to continue long work",
        MAX_DEADLINE.as_millis()
    )]
    TimeoutOverCeiling {
        /// The requested milliseconds.
        ms: u64,
    },
    /// An allowed kind the host does not watch: it could create such objects
    /// but never observe or prune them.
    #[error(
        "`policy.allowedKinds` lists `{kind}`, which is not in `spec.children`: the host would create such objects but never observe or prune them; add it to `spec.children` or remove it"
    )]
    KindNotAChild {
        /// The kind.
        kind: TypeRef,
    },
    /// An entry that cannot name a namespace.
    #[error(
        "`policy.allowedNamespaces` lists `{namespace}`, which is not a valid namespace; write a namespace name, or `*` for any"
    )]
    InvalidNamespace {
        /// The entry.
        namespace: String,
    },
}

impl PolicyError {
    /// UpperCamelCase reason, as used in status conditions.
    pub fn reason(&self) -> &'static str {
        "InvalidPolicy"
    }
}

impl From<&TypeMeta> for TypeRef {
    fn from(meta: &TypeMeta) -> Self {
        Self {
            api_version: meta.api_version.clone(),
            kind: meta.kind.clone(),
        }
    }
}

impl From<&ChildSpec> for TypeRef {
    fn from(child: &ChildSpec) -> Self {
        Self {
            api_version: child.api_version.clone(),
            kind: child.kind.clone(),
        }
    }
}

impl Policy {
    /// The policy of a reconciler: `spec.policy` over the restrictive
    /// default. `cluster_scoped` lists the cluster-scoped kinds (from
    /// discovery); the rules need them to tell which children take a
    /// namespace.
    ///
    /// `policy.allowedKinds` may only narrow `spec.children`: the host watches
    /// exactly those kinds, and an object of any other kind, once created,
    /// would never be seen again, so never updated nor pruned.
    pub fn for_reconciler(
        spec: &ReconcilerSpec,
        cluster_scoped: Vec<TypeRef>,
    ) -> Result<Self, PolicyError> {
        let children: Vec<TypeRef> = spec.children.iter().map(TypeRef::from).collect();
        let mut policy = build(
            spec.policy.as_ref().unwrap_or(&PolicySpec::default()),
            Some(&children),
            cluster_scoped,
        )?;
        policy.rules.readable = Some(
            spec.related
                .iter()
                .map(|related| TypeRef {
                    api_version: related.api_version.clone(),
                    kind: related.kind.clone(),
                })
                .collect(),
        );
        Ok(policy)
    }

    /// The policy a bare `spec.policy` block sets when the reconciler's
    /// children are not known (offline, from a `policy:` file): as
    /// [`Policy::for_reconciler`], except that without `allowedKinds` any
    /// kind is allowed.
    pub fn for_block(
        policy: &PolicySpec,
        cluster_scoped: Vec<TypeRef>,
    ) -> Result<Self, PolicyError> {
        build(policy, None, cluster_scoped)
    }
}

fn build(
    policy: &PolicySpec,
    children: Option<&[TypeRef]>,
    cluster_scoped: Vec<TypeRef>,
) -> Result<Policy, PolicyError> {
    Ok(Policy {
        limits: limits(policy)?,
        rules: Rules {
            allowed_kinds: allowed_kinds(policy, children)?,
            namespaces: namespaces(policy)?,
            cluster_scoped,
            allow_cluster_scoped: policy.allow_cluster_scoped,
            readable: None,
        },
    })
}

fn limits(policy: &PolicySpec) -> Result<Limits, PolicyError> {
    let default = Limits::default();
    let deadline = match positive("timeoutMs", policy.timeout_ms)? {
        Some(ms) if Duration::from_millis(ms) > MAX_DEADLINE => {
            return Err(PolicyError::TimeoutOverCeiling { ms });
        }
        Some(ms) => Duration::from_millis(ms),
        None => default.deadline,
    };
    let max_memory_bytes = match positive("maxMemoryMib", policy.max_memory_mib)? {
        Some(mib) if mib > MAX_MEMORY_MIB => return Err(PolicyError::MemoryOverCeiling { mib }),
        Some(mib) => (mib as usize) << 20,
        None => default.max_memory_bytes,
    };
    Ok(Limits {
        fuel: positive("fuel", policy.fuel)?.unwrap_or(default.fuel),
        deadline,
        max_memory_bytes,
        max_response_bytes: positive("maxResponseBytes", policy.max_response_bytes)?
            .map_or(default.max_response_bytes, |bytes| {
                usize::try_from(bytes).unwrap_or(usize::MAX)
            }),
        // Zero objects is a real policy: a guest that only reports status.
        max_objects: policy
            .max_objects
            .map_or(default.max_objects, |count| count as usize),
    })
}

/// `value`, refused when zero.
fn positive<T: Copy + Default + PartialEq>(
    field: &'static str,
    value: Option<T>,
) -> Result<Option<T>, PolicyError> {
    match value {
        Some(zero) if zero == T::default() => Err(PolicyError::Zero { field }),
        other => Ok(other),
    }
}

fn allowed_kinds(
    policy: &PolicySpec,
    children: Option<&[TypeRef]>,
) -> Result<Option<Vec<TypeRef>>, PolicyError> {
    let Some(allowed) = &policy.allowed_kinds else {
        return Ok(children.map(<[TypeRef]>::to_vec));
    };
    let allowed: Vec<TypeRef> = allowed.iter().map(TypeRef::from).collect();
    if let Some(kind) =
        children.and_then(|children| allowed.iter().find(|kind| !children.contains(kind)))
    {
        return Err(PolicyError::KindNotAChild { kind: kind.clone() });
    }
    Ok(Some(allowed))
}

fn namespaces(policy: &PolicySpec) -> Result<NamespaceRule, PolicyError> {
    let Some(listed) = &policy.allowed_namespaces else {
        return Ok(NamespaceRule::Parent);
    };
    if listed.iter().any(|namespace| namespace == ANY_NAMESPACE) {
        return Ok(NamespaceRule::Any);
    }
    if let Some(namespace) = listed.iter().find(|n| !validate::is_valid_namespace(n)) {
        return Err(PolicyError::InvalidNamespace {
            namespace: namespace.clone(),
        });
    }
    // The parent's namespace is always allowed, so an empty list is the default.
    Ok(if listed.is_empty() {
        NamespaceRule::Parent
    } else {
        NamespaceRule::Listed(listed.clone())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::crd::{ClusterReconciler, Reconciler};

    fn spec(policy: Option<Value>) -> ReconcilerSpec {
        serde_json::from_value(json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
            "children": [
                {"apiVersion": "apps/v1", "kind": "Deployment"},
                {"apiVersion": "v1", "kind": "Service"},
            ],
            "module": {"configMapRef": {"name": "my-app-module", "key": "module.wasm"}},
            "policy": policy,
        }))
        .unwrap()
    }

    fn kinds(names: &[&str]) -> Vec<TypeRef> {
        names.iter().map(|k| TypeRef::parse(k).unwrap()).collect()
    }

    fn scopes() -> Vec<TypeRef> {
        kinds(&["v1/Namespace"])
    }

    fn policy(policy: Value) -> Result<Policy, PolicyError> {
        Policy::for_reconciler(&spec(Some(policy)), scopes())
    }

    #[test]
    fn no_policy_is_the_restrictive_default() {
        let policy = Policy::for_reconciler(&spec(None), scopes()).unwrap();
        assert_eq!(
            policy,
            Policy {
                limits: Limits::default(),
                rules: Rules {
                    allowed_kinds: Some(kinds(&["apps/v1/Deployment", "v1/Service"])),
                    namespaces: NamespaceRule::Parent,
                    cluster_scoped: scopes(),
                    allow_cluster_scoped: false,
                    readable: Some(Vec::new()),
                },
            }
        );
    }

    #[test]
    fn the_shipped_default_file_is_the_same_as_no_policy() {
        let file: Value =
            serde_yaml_ng::from_str(include_str!("../../policies/default.yaml")).unwrap();
        let block: PolicySpec = serde_json::from_value(file["policy"].clone()).unwrap();
        assert_ne!(
            block,
            PolicySpec::default(),
            "the file spells every field out"
        );
        assert_eq!(
            Policy::for_reconciler(
                &ReconcilerSpec {
                    policy: Some(block),
                    ..spec(None)
                },
                scopes()
            ),
            Policy::for_reconciler(&spec(None), scopes())
        );
    }

    #[test]
    fn every_limit_can_be_set() {
        let policy = policy(json!({
            "fuel": 1000, "timeoutMs": 250, "maxMemoryMib": 64,
            "maxObjects": 0, "maxResponseBytes": 4096,
        }))
        .unwrap();
        assert_eq!(
            policy.limits,
            Limits {
                fuel: 1000,
                deadline: Duration::from_millis(250),
                max_memory_bytes: 64 << 20,
                max_response_bytes: 4096,
                max_objects: 0,
            }
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        for field in ["fuel", "timeoutMs", "maxMemoryMib", "maxResponseBytes"] {
            let error = policy(json!({ field: 0 })).unwrap_err();
            assert_eq!(error, PolicyError::Zero { field });
            assert_eq!(error.reason(), "InvalidPolicy");
        }
        assert_eq!(
            policy(json!({"fuel": 0})).unwrap_err().to_string(),
            "`policy.fuel` is 0, so no call could succeed; set a positive value, or remove it for the default"
        );
    }

    #[test]
    fn memory_and_deadline_are_capped_by_the_host() {
        assert!(policy(json!({"maxMemoryMib": MAX_MEMORY_MIB})).is_ok());
        assert_eq!(
            policy(json!({"maxMemoryMib": 4096}))
                .unwrap_err()
                .to_string(),
            "`policy.maxMemoryMib` is 4096, over the host's ceiling of 1024 MiB; lower it"
        );
        assert!(policy(json!({"timeoutMs": 60_000})).is_ok());
        assert_eq!(
            policy(json!({"timeoutMs": 600_000}))
                .unwrap_err()
                .to_string(),
            "`policy.timeoutMs` is 600000, over the host's ceiling of 60000 ms; lower it, and have the guest requeue to continue long work"
        );
    }

    #[test]
    fn allowed_kinds_may_only_narrow_the_children() {
        let narrowed =
            policy(json!({"allowedKinds": [{"apiVersion": "v1", "kind": "Service"}]})).unwrap();
        assert_eq!(narrowed.rules.allowed_kinds, Some(kinds(&["v1/Service"])));
        let error = policy(json!({"allowedKinds": [{"apiVersion": "v1", "kind": "ConfigMap"}]}))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`policy.allowedKinds` lists `v1/ConfigMap`, which is not in `spec.children`: the host would create such objects but never observe or prune them; add it to `spec.children` or remove it"
        );
    }

    #[test]
    fn allowed_namespaces_widen_the_parents_or_open_all() {
        let listed = policy(json!({"allowedNamespaces": ["billing", "ops"]})).unwrap();
        assert_eq!(
            listed.rules.namespaces,
            NamespaceRule::Listed(vec!["billing".into(), "ops".into()])
        );
        let any = policy(json!({"allowedNamespaces": ["billing", "*"]})).unwrap();
        assert_eq!(any.rules.namespaces, NamespaceRule::Any);
        let empty = policy(json!({"allowedNamespaces": []})).unwrap();
        assert_eq!(empty.rules.namespaces, NamespaceRule::Parent);
        assert_eq!(
            policy(json!({"allowedNamespaces": ["Ops"]})).unwrap_err(),
            PolicyError::InvalidNamespace {
                namespace: "Ops".into()
            }
        );
    }

    #[test]
    fn a_bare_block_without_allowed_kinds_allows_any_kind() {
        let open = Policy::for_block(&PolicySpec::default(), Vec::new()).unwrap();
        assert_eq!(open.rules.allowed_kinds, None);
        assert_eq!(open.rules.namespaces, NamespaceRule::Parent);
        let block: PolicySpec = serde_json::from_value(
            json!({"allowedKinds": [{"apiVersion": "v1", "kind": "ConfigMap"}]}),
        )
        .unwrap();
        let narrowed = Policy::for_block(&block, Vec::new()).unwrap();
        assert_eq!(narrowed.rules.allowed_kinds, Some(kinds(&["v1/ConfigMap"])));
    }

    #[test]
    fn the_multi_namespace_example_builds() {
        let reconciler: ClusterReconciler =
            serde_yaml_ng::from_str(include_str!("../../policies/examples/multi-namespace.yaml"))
                .unwrap();
        let policy = Policy::for_reconciler(&reconciler.spec.0, scopes()).unwrap();
        assert!(policy.limits.fuel < Limits::default().fuel);
        assert!(policy.limits.deadline < Limits::default().deadline);
        assert!(policy.limits.max_memory_bytes < Limits::default().max_memory_bytes);
        assert!(
            matches!(&policy.rules.namespaces, NamespaceRule::Listed(listed) if listed.len() == 2)
        );
        assert!(!policy.rules.allow_cluster_scoped);
        assert!(reconciler.spec.0.service_account_name.is_some());
    }

    #[test]
    fn the_tenant_example_builds_within_its_namespace() {
        let reconciler: Reconciler =
            serde_yaml_ng::from_str(include_str!("../../policies/examples/tenant.yaml")).unwrap();
        let policy = Policy::for_reconciler(&reconciler.spec.0, scopes()).unwrap();
        assert!(policy.limits.fuel < Limits::default().fuel);
        assert_eq!(policy.rules.namespaces, NamespaceRule::Parent);
        assert!(!policy.rules.allow_cluster_scoped);
    }

    #[test]
    fn the_cluster_scoped_example_builds() {
        let reconciler: ClusterReconciler =
            serde_yaml_ng::from_str(include_str!("../../policies/examples/cluster-scoped.yaml"))
                .unwrap();
        let spec = &reconciler.spec.0;
        let policy = Policy::for_reconciler(spec, scopes()).unwrap();
        assert!(policy.rules.allow_cluster_scoped);
        let allowed = policy.rules.allowed_kinds.unwrap();
        assert!(allowed.contains(&TypeRef::parse("v1/Namespace").unwrap()));
        let children: Vec<TypeRef> = spec.children.iter().map(TypeRef::from).collect();
        assert_eq!(allowed, children);
        assert!(spec.service_account_name.is_some());
    }
}
