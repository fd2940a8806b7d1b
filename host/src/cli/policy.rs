//! The policy offline: read from a file like those in `policies/`, with
//! Kubernetes' built-in cluster-scoped kinds standing in for discovery.

use std::path::Path;

use k8s_openapi::api::{
    admissionregistration, certificates, core, flowcontrol, networking, node, rbac, scheduling,
    storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
use k8s_openapi::{ClusterResourceScope, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::DEFAULT_HOST_NAMESPACE;
use crate::crd::{PolicySpec, ReconcilerKey, ReconcilerSpec, TypeMeta};
use crate::inputs::{self, InputError};
use crate::policy::Policy;
use crate::tenancy::{Identity, Tenancy, confine};
use crate::validate::TypeRef;

/// The policy in `path`: either a whole Reconciler or ClusterReconciler
/// manifest (its `spec.policy` over the default, allowed kinds defaulting to
/// its `spec.children`, exactly as in a cluster), or a bare `policy:` block
/// (allowed kinds defaulting to any, since no children are named).
///
/// A `Reconciler` manifest, and a block when `namespaced`, is confined as the
/// host confines a namespaced Reconciler: a policy or kind reaching beyond
/// its namespace is refused with the host's own message.
pub fn read(path: &Path, namespaced: bool) -> Result<Policy, InputError> {
    let document = inputs::read_value(path)?;
    let invalid = |problem: String| InputError::new(path, problem);
    let policy = match document["kind"].as_str() {
        Some(kind @ ("Reconciler" | "ClusterReconciler")) => {
            let spec: ReconcilerSpec = parse(path, &document["spec"], "spec")?;
            match (kind, namespaced) {
                ("ClusterReconciler", true) => {
                    return Err(invalid(
                        "is a ClusterReconciler, which is not namespaced; drop --namespaced".into(),
                    ));
                }
                ("Reconciler", _) => confine_manifest(&document, &spec).map_err(invalid)?,
                _ => {}
            }
            Policy::for_reconciler(&spec, builtin_cluster_scoped())
        }
        _ if document.get("policy").is_some() => {
            let block: PolicySpec = parse(path, &document["policy"], "policy")?;
            if namespaced {
                confine::check_policy(&block, None).map_err(|e| invalid(e.to_string()))?;
            }
            Policy::for_block(&block, builtin_cluster_scoped())
        }
        _ => {
            return Err(invalid(
                "is neither a Reconciler/ClusterReconciler manifest nor a `policy:` block; see policies/ for both forms".into(),
            ));
        }
    };
    policy.map_err(|error| invalid(error.to_string()))
}

/// The key and spec of the Reconciler or ClusterReconciler manifest in
/// `path`, its spec checked as the host checks it before running it.
pub fn read_manifest(path: &Path) -> Result<(ReconcilerKey, ReconcilerSpec), InputError> {
    let document = inputs::read_value(path)?;
    let invalid = |problem: &str| InputError::new(path, problem);
    if document["metadata"]["name"].as_str().is_none() {
        return Err(invalid("has no `metadata.name`"));
    }
    let key = manifest_key(&document)
        .ok_or_else(|| invalid("is not a Reconciler or ClusterReconciler manifest"))?;
    let spec: ReconcilerSpec = parse(path, &document["spec"], "spec")?;
    crate::crd::check(&spec).map_err(|error| invalid(&error.to_string()))?;
    Ok((key, spec))
}

/// The key of a Reconciler (in namespace `default` when it names none) or
/// ClusterReconciler manifest; `None` for any other document.
fn manifest_key(document: &Value) -> Option<ReconcilerKey> {
    let name = document["metadata"]["name"].as_str().unwrap_or_default();
    match document["kind"].as_str()? {
        "Reconciler" => Some(ReconcilerKey::namespaced(
            document["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default"),
            name,
        )),
        "ClusterReconciler" => Some(ReconcilerKey::cluster(name)),
        _ => None,
    }
}

/// The host's confinement of a namespaced Reconciler manifest, offline: its
/// key (see [`manifest_key`]), Kubernetes' built-in kinds for discovery, and
/// no host identity to compare with.
fn confine_manifest(document: &Value, spec: &ReconcilerSpec) -> Result<(), String> {
    let key = manifest_key(document).expect("a Reconciler manifest");
    let tenancy = Tenancy::default();
    let identity = Identity::of(&key, spec, &tenancy, DEFAULT_HOST_NAMESPACE);
    let cluster_scoped = builtin_cluster_scoped();
    let scope = |role: &'static str, kind: &TypeMeta| {
        let kind = TypeRef::from(kind);
        let namespaced = !cluster_scoped.iter().any(|c| c.same_resource(&kind));
        (role, kind, namespaced)
    };
    let kinds = std::iter::once(scope("parent", &spec.parent)).chain(
        spec.children
            .iter()
            .map(|child| scope("child", &child.type_meta())),
    );
    confine::check_spec(&key, spec, &tenancy, &identity, None)
        .and_then(|()| confine::no_cluster_scoped(kinds))
        .map_err(|error| error.to_string())
}

fn parse<T: DeserializeOwned>(path: &Path, value: &Value, field: &str) -> Result<T, InputError> {
    T::deserialize(value).map_err(|e| InputError::new(path, format!("`{field}`: {e}")))
}

/// Kubernetes' own cluster-scoped kinds: what discovery would report for
/// them. Cluster-scoped custom resources are unknown offline and treated as
/// namespaced.
pub fn builtin_cluster_scoped() -> Vec<TypeRef> {
    fn kind<K: Resource<Scope = ClusterResourceScope>>() -> TypeRef {
        TypeRef {
            api_version: K::API_VERSION.to_string(),
            kind: K::KIND.to_string(),
        }
    }
    vec![
        kind::<core::v1::Namespace>(),
        kind::<core::v1::Node>(),
        kind::<core::v1::PersistentVolume>(),
        kind::<rbac::v1::ClusterRole>(),
        kind::<rbac::v1::ClusterRoleBinding>(),
        kind::<apiextensions::v1::CustomResourceDefinition>(),
        kind::<apiregistration::v1::APIService>(),
        kind::<storage::v1::StorageClass>(),
        kind::<storage::v1::CSIDriver>(),
        kind::<storage::v1::CSINode>(),
        kind::<storage::v1::VolumeAttachment>(),
        kind::<scheduling::v1::PriorityClass>(),
        kind::<node::v1::RuntimeClass>(),
        kind::<networking::v1::IngressClass>(),
        kind::<admissionregistration::v1::ValidatingWebhookConfiguration>(),
        kind::<admissionregistration::v1::MutatingWebhookConfiguration>(),
        kind::<admissionregistration::v1::ValidatingAdmissionPolicy>(),
        kind::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>(),
        kind::<flowcontrol::v1::FlowSchema>(),
        kind::<flowcontrol::v1::PriorityLevelConfiguration>(),
        kind::<certificates::v1::CertificateSigningRequest>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::NamespaceRule;

    fn read_text(text: &str) -> Result<Policy, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, text).unwrap();
        read(&path, false)
    }

    #[test]
    fn every_file_in_policies_reads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        for file in [
            "default.yaml",
            "examples/multi-namespace.yaml",
            "examples/cluster-scoped.yaml",
            "examples/tenant.yaml",
        ] {
            let policy = read(&root.join(file), false).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                policy
                    .rules
                    .cluster_scoped
                    .contains(&TypeRef::parse("v1/Namespace").unwrap())
            );
        }
    }

    #[test]
    fn a_manifest_defaults_allowed_kinds_to_its_children_and_a_block_to_any() {
        let manifest = read_text(
            "apiVersion: sous.dev/v1alpha1\nkind: Reconciler\nmetadata: {name: a}\nspec:\n  parent: {apiVersion: v1, kind: ConfigMap}\n  children: [{apiVersion: v1, kind: Secret}]\n  module: {configMapRef: {name: m, key: k}}\n",
        )
        .unwrap();
        assert_eq!(
            manifest.rules.allowed_kinds,
            Some(vec![TypeRef::parse("v1/Secret").unwrap()])
        );
        let block = read_text("policy: {fuel: 5, allowedNamespaces: [ops]}\n").unwrap();
        assert_eq!(block.rules.allowed_kinds, None);
        assert_eq!(block.limits.fuel, 5);
        assert_eq!(
            block.rules.namespaces,
            NamespaceRule::Listed(vec!["ops".into()])
        );
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let error = read_text("fuel: 5\n").unwrap_err();
        assert!(error.problem.contains("neither a Reconciler"), "{error}");
        let error = read_text("policy: {fuel: lots}\n").unwrap_err();
        assert!(error.problem.starts_with("`policy`: "), "{error}");
        let error = read_text("policy: {timeoutMs: 0}\n").unwrap_err();
        assert!(error.problem.contains("`policy.timeoutMs` is 0"), "{error}");
    }
}
