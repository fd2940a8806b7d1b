//! Confinement: the host's own limits on a namespaced `Reconciler`, which no
//! `spec.policy` can widen (its author writes the policy). Children, related
//! objects and module ConfigMaps stay in the Reconciler's namespace, nothing
//! cluster-scoped is parented or written, and no reconciler acts as the host.
//! Each refusal says what to use instead.

use super::{Identity, Tenancy};
use crate::controller::kinds::Kinds;
use crate::crd::{PolicySpec, ReconcilerKey, ReconcilerSpec};
use crate::policy::ANY_NAMESPACE;
use crate::validate::{self, NamespaceRule, Rules, TypeRef};

/// What every refusal of a namespaced Reconciler's wider powers points to.
const REMEDY: &str = "ask a cluster administrator for a ClusterReconciler";

/// A spec the host refuses to run, for reasons of tenancy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfinementError {
    /// A namespaced Reconciler's policy asks for cluster-scoped children.
    #[error(
        "`policy.allowClusterScoped` is true, but a namespaced Reconciler never writes cluster-scoped objects; remove it, or {REMEDY}"
    )]
    ClusterScopedPolicy,
    /// A namespaced Reconciler's parent or child kind is cluster-scoped.
    #[error(
        "{role} kind `{kind}` is cluster-scoped, but a namespaced Reconciler reaches only its own namespace; remove it, or {REMEDY}"
    )]
    ClusterScopedKind {
        /// `parent` or `child`.
        role: &'static str,
        /// The kind.
        kind: TypeRef,
    },
    /// A namespaced Reconciler names another namespace (or `*`).
    #[error(
        "`{field}` names namespace `{namespace}`, but a namespaced Reconciler reaches only its own namespace; remove it, or {REMEDY}"
    )]
    OutsideNamespace {
        /// The field naming it, as written in YAML.
        field: String,
        /// The namespace named.
        namespace: String,
    },
    /// `spec.serviceAccountName` cannot name a ServiceAccount.
    #[error(
        "`spec.serviceAccountName` is `{name}`, which is not a ServiceAccount name; write the name of a ServiceAccount in the reconciler's namespace"
    )]
    InvalidServiceAccount {
        /// What it says.
        name: String,
    },
    /// The reconciler would act as the host itself.
    #[error(
        "{identity} is the host's own identity, which no reconciler may act as; name a ServiceAccount of the reconciler's own in `spec.serviceAccountName`"
    )]
    HostIdentity {
        /// The identity the reconciler resolved to.
        identity: Identity,
    },
}

impl ConfinementError {
    /// UpperCamelCase reason of the `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ClusterScopedPolicy { .. } | Self::ClusterScopedKind { .. } => {
                "ClusterScopeNotAllowed"
            }
            Self::OutsideNamespace { .. } => "OutsideNamespace",
            Self::InvalidServiceAccount { .. } => "InvalidServiceAccount",
            Self::HostIdentity { .. } => "HostIdentity",
        }
    }
}

/// Whether the host confines reconciler `key`: every namespaced Reconciler,
/// unless the administrator allowed escalation.
pub fn is_confined(key: &ReconcilerKey, tenancy: &Tenancy) -> bool {
    key.namespace.is_some() && !tenancy.allow_escalation
}

/// Checks what the spec alone tells: the ServiceAccount, the host's own
/// identity (`host_user`, when known) and, for a confined reconciler, every
/// namespace it names and its policy.
pub fn check_spec(
    key: &ReconcilerKey,
    spec: &ReconcilerSpec,
    tenancy: &Tenancy,
    identity: &Identity,
    host_user: Option<&str>,
) -> Result<(), ConfinementError> {
    if let Some(name) = &spec.service_account_name
        && !validate::is_valid_object_name(name)
    {
        return Err(ConfinementError::InvalidServiceAccount { name: name.clone() });
    }
    if identity.username().is_some() && identity.username().as_deref() == host_user {
        return Err(ConfinementError::HostIdentity {
            identity: identity.clone(),
        });
    }
    let Some(own) = key
        .namespace
        .as_deref()
        .filter(|_| is_confined(key, tenancy))
    else {
        return Ok(());
    };
    let outside = |field: String, namespace: &str| ConfinementError::OutsideNamespace {
        field,
        namespace: namespace.to_string(),
    };
    if let Some(namespace) = spec.module.namespace.as_deref().filter(|n| *n != own) {
        return Err(outside("spec.module.namespace".into(), namespace));
    }
    for (index, related) in spec.related.iter().enumerate() {
        if let Some(namespace) = related.namespace.as_deref().filter(|n| *n != own) {
            return Err(outside(
                format!("spec.related[{index}].namespace"),
                namespace,
            ));
        }
    }
    match &spec.policy {
        Some(policy) => check_policy(policy, Some(own)),
        None => Ok(()),
    }
}

/// Checks a namespaced Reconciler's policy: no cluster-scoped children, no
/// namespace but `own` (when known; offline only `*` is known to be wider).
pub fn check_policy(policy: &PolicySpec, own: Option<&str>) -> Result<(), ConfinementError> {
    if policy.allow_cluster_scoped {
        return Err(ConfinementError::ClusterScopedPolicy);
    }
    let wider = |namespace: &&String| {
        *namespace == ANY_NAMESPACE || own.is_some_and(|own| *namespace != own)
    };
    match policy.allowed_namespaces.iter().flatten().find(wider) {
        Some(namespace) => Err(ConfinementError::OutsideNamespace {
            field: "policy.allowedNamespaces".into(),
            namespace: namespace.clone(),
        }),
        None => Ok(()),
    }
}

/// Checks what discovery tells: a confined reconciler's parent and children
/// live in namespaces. (Cluster-scoped related kinds are allowed where its
/// identity may read them; see [`super::access`].)
pub fn check_kinds(
    key: &ReconcilerKey,
    kinds: &Kinds,
    tenancy: &Tenancy,
) -> Result<(), ConfinementError> {
    if !is_confined(key, tenancy) {
        return Ok(());
    }
    let roles = std::iter::once(("parent", &kinds.parent))
        .chain(kinds.children.iter().map(|kind| ("child", kind)))
        .map(|(role, kind)| (role, kind.type_ref(), kind.namespaced));
    no_cluster_scoped(roles)
}

/// Refuses the first `(role, kind, namespaced)` that is cluster-scoped: a
/// confined reconciler's parent and children live in namespaces.
pub fn no_cluster_scoped(
    kinds: impl IntoIterator<Item = (&'static str, TypeRef, bool)>,
) -> Result<(), ConfinementError> {
    match kinds.into_iter().find(|(_, _, namespaced)| !namespaced) {
        Some((role, kind, _)) => Err(ConfinementError::ClusterScopedKind { role, kind }),
        None => Ok(()),
    }
}

/// Confines offline answer rules as the host confines a namespaced
/// Reconciler's: children in the parent's namespace, none cluster-scoped.
pub fn confine_rules(rules: &mut Rules) {
    rules.namespaces = NamespaceRule::Parent;
    rules.allow_cluster_scoped = false;
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;
    use serde_json::{Value, json};

    use super::*;
    use crate::controller::kinds::Kind;

    const HOST: &str = "system:serviceaccount:sous-system:sous";

    fn tenant() -> ReconcilerKey {
        ReconcilerKey::namespaced("tenant", "r")
    }

    fn spec(extra: Value) -> ReconcilerSpec {
        let mut spec = json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
            "children": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding"}],
            "module": {"configMapRef": {"name": "m", "key": "k"}},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(spec).unwrap()
    }

    fn check(key: &ReconcilerKey, extra: Value, tenancy: &Tenancy) -> Result<(), ConfinementError> {
        let spec = spec(extra);
        let identity = Identity::of(key, &spec, tenancy, "sous-system");
        check_spec(key, &spec, tenancy, &identity, Some(HOST))
    }

    fn refused(extra: Value) -> ConfinementError {
        check(&tenant(), extra, &Tenancy::default()).unwrap_err()
    }

    #[test]
    fn a_namespaced_policy_cannot_widen_beyond_its_namespace() {
        let error = refused(json!({"policy": {"allowClusterScoped": true}}));
        assert_eq!(error.reason(), "ClusterScopeNotAllowed");
        assert_eq!(
            error.to_string(),
            "`policy.allowClusterScoped` is true, but a namespaced Reconciler never writes cluster-scoped objects; remove it, or ask a cluster administrator for a ClusterReconciler"
        );
        let error = refused(json!({"policy": {"allowedNamespaces": ["*"]}}));
        assert_eq!(error.reason(), "OutsideNamespace");
        assert_eq!(
            error.to_string(),
            "`policy.allowedNamespaces` names namespace `*`, but a namespaced Reconciler reaches only its own namespace; remove it, or ask a cluster administrator for a ClusterReconciler"
        );
        let error = refused(json!({"policy": {"allowedNamespaces": ["tenant", "kube-system"]}}));
        assert!(error.to_string().contains("`kube-system`"), "{error}");
        // Narrowing to its own namespace is fine.
        assert!(
            check(
                &tenant(),
                json!({"policy": {"allowedNamespaces": ["tenant"], "fuel": 10}}),
                &Tenancy::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn related_objects_and_modules_come_from_its_own_namespace() {
        let error = refused(json!({"related": [
            {"apiVersion": "v1", "kind": "ConfigMap"},
            {"apiVersion": "v1", "kind": "Secret", "namespace": "victim"},
        ]}));
        assert_eq!(
            error,
            ConfinementError::OutsideNamespace {
                field: "spec.related[1].namespace".into(),
                namespace: "victim".into(),
            }
        );
        let error = refused(
            json!({"module": {"configMapRef": {"name": "m", "key": "k"}, "namespace": "victim"}}),
        );
        assert!(
            error
                .to_string()
                .starts_with("`spec.module.namespace` names namespace `victim`"),
            "{error}"
        );
    }

    #[test]
    fn no_reconciler_acts_as_the_host() {
        let host_namespace = ReconcilerKey::namespaced("sous-system", "r");
        let error = check(
            &host_namespace,
            json!({"serviceAccountName": "sous"}),
            &Tenancy::default(),
        )
        .unwrap_err();
        assert_eq!(error.reason(), "HostIdentity");
        assert_eq!(
            error.to_string(),
            "ServiceAccount sous-system/sous is the host's own identity, which no reconciler may act as; name a ServiceAccount of the reconciler's own in `spec.serviceAccountName`"
        );
        // Nor by default, when the administrator's default names the host's account.
        let tenancy = Tenancy {
            default_service_account: "sous".into(),
            ..Tenancy::default()
        };
        assert!(check(&host_namespace, json!({}), &tenancy).is_err());
        // The same name elsewhere is another account.
        assert!(
            check(
                &tenant(),
                json!({"serviceAccountName": "sous"}),
                &Tenancy::default()
            )
            .is_ok()
        );
        let error =
            refused(json!({"serviceAccountName": "system:serviceaccount:sous-system:sous"}));
        assert_eq!(error.reason(), "InvalidServiceAccount");
    }

    #[test]
    fn offline_a_policy_block_is_refused_only_what_is_surely_wider() {
        let block = |value: Value| serde_json::from_value::<PolicySpec>(value).unwrap();
        let any = block(json!({"allowedNamespaces": ["*"]}));
        assert_eq!(
            check_policy(&any, None).unwrap_err().reason(),
            "OutsideNamespace"
        );
        let listed = block(json!({"allowedNamespaces": ["tenant"]}));
        assert!(check_policy(&listed, None).is_ok());
        assert!(check_policy(&listed, Some("other")).is_err());
        let wide = block(json!({"allowClusterScoped": true}));
        assert_eq!(
            check_policy(&wide, None).unwrap_err(),
            ConfinementError::ClusterScopedPolicy
        );
    }

    #[test]
    fn cluster_reconcilers_and_allowed_escalation_keep_their_policy() {
        let wide = json!({
            "policy": {"allowClusterScoped": true, "allowedNamespaces": ["*"]},
            "related": [{"apiVersion": "v1", "kind": "Secret", "namespace": "victim"}],
        });
        let cluster = ReconcilerKey::cluster("r");
        assert!(check(&cluster, wide.clone(), &Tenancy::default()).is_ok());
        let open = Tenancy {
            allow_escalation: true,
            ..Tenancy::default()
        };
        assert!(check(&tenant(), wide, &open).is_ok());
    }

    fn kind(api_version: &str, name: &str, namespaced: bool) -> Kind {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Kind {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, name)),
            namespaced,
            has_status: false,
        }
    }

    #[test]
    fn a_namespaced_reconciler_neither_parents_nor_writes_cluster_scoped_kinds() {
        let kinds = |parent: Kind, child: Kind| Kinds {
            parent,
            children: vec![kind("v1", "ConfigMap", true), child],
            related: vec![],
        };
        let my_app = || kind("example.sous.dev/v1", "MyApp", true);
        let binding = kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false);
        let error = check_kinds(
            &tenant(),
            &kinds(my_app(), binding.clone()),
            &Tenancy::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child kind `rbac.authorization.k8s.io/v1/ClusterRoleBinding` is cluster-scoped, but a namespaced Reconciler reaches only its own namespace; remove it, or ask a cluster administrator for a ClusterReconciler"
        );
        let namespaces = kind("v1", "Namespace", false);
        let error = check_kinds(
            &tenant(),
            &kinds(namespaces, kind("v1", "Secret", true)),
            &Tenancy::default(),
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("parent kind `v1/Namespace`"),
            "{error}"
        );
        assert!(
            check_kinds(
                &tenant(),
                &kinds(my_app(), kind("v1", "Secret", true)),
                &Tenancy::default()
            )
            .is_ok()
        );
        assert!(
            check_kinds(
                &ReconcilerKey::cluster("r"),
                &kinds(my_app(), binding),
                &Tenancy::default()
            )
            .is_ok()
        );
    }
}
