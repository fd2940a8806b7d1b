//! The `sous.dev/v1alpha1` API: `Reconciler` (namespaced: parents in its own
//! namespace) and `ClusterReconciler` (parents in every namespace), as Rust
//! types from which the CustomResourceDefinitions are generated.

mod check;
mod key;
mod selector;
mod spec;
mod status;

use kube::CustomResource;
use kube::core::crd::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use check::{SpecError, check};
pub use key::ReconcilerKey;
pub use selector::{SelectorError, check_key, check_value, parse_selector};
pub use spec::{
    Adopt, ChildSpec, ConfigMapKey, DeletePolicy, LabelSelector, LabelSelectorRequirement, Mode,
    ModuleSource, PolicySpec, ReconcilerSpec, RelatedKind, TypeMeta, UpdateMethod, UpdateStrategy,
    namespace_wanted,
};
pub use status::{Condition, ReconcilerStatus};

/// The API group of every Sous kind.
pub const GROUP: &str = "sous.dev";

/// A namespaced reconciler: watches parents in its own namespace.
// Several `printcolumn(...)` share keys such as `type_`; clippy mistakes them for repeats.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sous.dev",
    version = "v1alpha1",
    kind = "Reconciler",
    doc = "A Sous reconciler for the parents in its own namespace.",
    namespaced,
    status = "ReconcilerStatus",
    shortname = "rec",
    category = "sous",
    printcolumn(name = "Parent", type_ = "string", json_path = ".spec.parent.kind"),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        priority = "1"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Module",
        type_ = "string",
        json_path = ".status.moduleDigest",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct NamespacedSpec(pub ReconcilerSpec);

/// A cluster-wide reconciler: watches parents in every namespace.
// Several `printcolumn(...)` share keys such as `type_`; clippy mistakes them for repeats.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sous.dev",
    version = "v1alpha1",
    kind = "ClusterReconciler",
    doc = "A Sous reconciler for the parents in every namespace.",
    status = "ReconcilerStatus",
    shortname = "crec",
    category = "sous",
    printcolumn(name = "Parent", type_ = "string", json_path = ".spec.parent.kind"),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        priority = "1"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Module",
        type_ = "string",
        json_path = ".status.moduleDigest",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterSpec(pub ReconcilerSpec);

/// Both CustomResourceDefinitions as multi-document YAML, as `sous crds` prints
/// them and the Helm chart ships them.
pub fn definitions_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut yaml = String::new();
    for crd in [Reconciler::crd(), ClusterReconciler::crd()] {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(yaml)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_kinds_are_in_the_sous_group_with_their_scopes() {
        let namespaced = Reconciler::crd();
        let cluster = ClusterReconciler::crd();
        assert_eq!(namespaced.spec.group, GROUP);
        assert_eq!(namespaced.spec.scope, "Namespaced");
        assert_eq!(cluster.spec.scope, "Cluster");
        assert_eq!(
            namespaced.metadata.name.as_deref(),
            Some("reconcilers.sous.dev")
        );
        assert_eq!(
            cluster.metadata.name.as_deref(),
            Some("clusterreconcilers.sous.dev")
        );
        let version = &namespaced.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some())
        );
    }

    #[test]
    fn a_reconciler_reads_from_yaml_and_both_kinds_share_the_spec() {
        let object: Reconciler = serde_json::from_value(json!({
            "apiVersion": "sous.dev/v1alpha1",
            "kind": "Reconciler",
            "metadata": {"name": "my-app", "namespace": "shop"},
            "spec": {
                "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
                "children": [{"apiVersion": "apps/v1", "kind": "Deployment"}, {"apiVersion": "v1", "kind": "Service"}],
                "module": {"configMapRef": {"name": "my-app-module", "key": "module.wasm"}},
                "config": {"anything": ["goes", 1]},
            },
        }))
        .unwrap();
        let spec = &object.spec.0;
        assert_eq!(spec.parent.kind, "MyApp");
        assert_eq!(spec.children.len(), 2);
        assert!(!spec.finalizer);
        assert_eq!(spec.config.as_ref().unwrap()["anything"][1], 1);
        let spec_schema = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
            let schema = serde_json::to_value(crd.spec.versions[0].schema.clone()).unwrap();
            schema["openAPIV3Schema"]["properties"]["spec"]["properties"].clone()
        };
        assert_eq!(
            spec_schema(ClusterReconciler::crd()),
            spec_schema(Reconciler::crd())
        );
    }

    #[test]
    fn free_form_config_keeps_unknown_fields() {
        let schema =
            serde_json::to_value(Reconciler::crd().spec.versions[0].schema.clone()).unwrap();
        let config = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["config"];
        assert_eq!(
            config["x-kubernetes-preserve-unknown-fields"], true,
            "{config}"
        );
    }

    #[test]
    fn the_definitions_print_as_two_yaml_documents() {
        let yaml = definitions_yaml().unwrap();
        assert_eq!(yaml.matches("---\n").count(), 2);
        assert!(yaml.contains("kind: CustomResourceDefinition"));
        // The API server knows only int32/int64 and warns on anything else.
        assert!(!yaml.contains("format: uint"), "{yaml}");
    }
}
