//! `spec` of a Reconciler: what it watches, which module answers, within which policy.

use std::collections::BTreeMap;

use kube::core::{GroupVersionKind, Selector};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::selector::SelectorError;
use crate::policy::ANY_NAMESPACE;

/// The desired behaviour of a reconciler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcilerSpec {
    /// The watched kind: one reconcile per object of it (the parent).
    pub parent: TypeMeta,
    /// `Composite` (default): the parent is the reconciler's own object,
    /// whose status the host writes. `Decorator`: the parent is someone
    /// else's object of any kind; the host adds children (attachments) and
    /// never writes its status.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "Composite"))]
    pub mode: Mode,
    /// Which parents to reconcile: only those whose labels match (all
    /// when absent). A parent that stops matching is treated as leaving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_selector: Option<LabelSelector>,
    /// Kinds the guest may produce, and how each is written; the host
    /// watches them as owned children.
    #[serde(default)]
    pub children: Vec<ChildSpec>,
    /// Extra kinds passed to the guest read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RelatedKind>,
    /// Where the module's bytes are.
    pub module: ModuleSource,
    /// Limits and permissions; the restrictive default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
    /// Apply children as this ServiceAccount (impersonation), so Kubernetes
    /// RBAC bounds what the reconciler can write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Add `sous.dev/finalizer` to parents and call the guest's `finalize`
    /// before they go.
    #[serde(default)]
    pub finalizer: bool,
    /// Reconcile every parent at least this often, changed or not (default
    /// 600; 0 turns periodic resync off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub resync_seconds: Option<u32>,
    /// Parents reconciled at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_concurrent_reconciles: Option<u16>,
    /// Free-form configuration handed to the guest as `request.config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<Value>,
}

/// An `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeMeta {
    /// `group/version`, or `v1` for the core group.
    pub api_version: String,
    /// The kind.
    pub kind: String,
}

impl TypeMeta {
    /// The `apiVersion` and `kind` of `object` (JSON; empty when absent).
    pub fn of_object(object: &Value) -> Self {
        Self {
            api_version: object["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kind: object["kind"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Its group, version and kind (the core group is `""`).
    pub fn gvk(&self) -> GroupVersionKind {
        let (group, version) = self
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &self.api_version));
        GroupVersionKind::gvk(group, version, &self.kind)
    }
}

/// Whose object the parent is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// The parent is the reconciler's own: the host writes its status.
    #[default]
    Composite,
    /// The parent is someone else's object, of any kind the API server
    /// serves: the host writes only children (attachments), never its
    /// status.
    Decorator,
}

/// A child kind and how the host writes, deletes and adopts its objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildSpec {
    /// `group/version`, or `v1` for the core group.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// How a child whose desired state changed is brought to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<UpdateStrategy>,
    /// What happens to a child no longer desired, or whose parent goes.
    #[serde(default, skip_serializing_if = "is_default")]
    pub delete_policy: DeletePolicy,
    /// Whether an existing object the host did not create may become a child.
    #[serde(default, skip_serializing_if = "is_default")]
    pub adopt: Adopt,
}

impl ChildSpec {
    /// A child kind written in place, deleted when not desired, never adopting.
    pub fn of(type_meta: TypeMeta) -> Self {
        Self {
            api_version: type_meta.api_version,
            kind: type_meta.kind,
            update_strategy: None,
            delete_policy: DeletePolicy::default(),
            adopt: Adopt::default(),
        }
    }

    /// Its `apiVersion` and `kind`.
    pub fn type_meta(&self) -> TypeMeta {
        TypeMeta {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
        }
    }

    /// Its update method (`InPlace` when unset).
    pub fn update_method(&self) -> UpdateMethod {
        self.update_strategy
            .as_ref()
            .map(|strategy| strategy.method)
            .unwrap_or_default()
    }
}

/// How changed children of one kind are updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    /// The method.
    #[serde(default)]
    pub method: UpdateMethod,
}

/// How a child that differs from its desired state is brought to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UpdateMethod {
    /// Server-side apply of the desired object.
    #[default]
    InPlace,
    /// Delete the object and create it anew.
    Recreate,
    /// Create a missing object; never change an existing one.
    OnDelete,
    /// As `InPlace`, one child of the kind at a time, each waiting until
    /// the one changed before it is ready.
    RollingInPlace,
    /// As `Recreate`, one child of the kind at a time, each waiting until
    /// the one changed before it is ready.
    RollingRecreate,
}

impl UpdateMethod {
    /// Whether at most one child of the kind changes at a time.
    pub fn is_rolling(self) -> bool {
        matches!(self, Self::RollingInPlace | Self::RollingRecreate)
    }

    /// Whether a change deletes the object and creates it anew.
    pub fn recreates(self) -> bool {
        matches!(self, Self::Recreate | Self::RollingRecreate)
    }
}

/// What happens to a child no longer desired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletePolicy {
    /// Delete it.
    #[default]
    Delete,
    /// Release it: remove the host's labels and the parent's
    /// ownerReference and leave the object.
    Orphan,
}

/// Whether an existing object named like a desired child becomes one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Adopt {
    /// Never: the parent reports `ChildExists` and nothing of the answer
    /// is written.
    #[default]
    Never,
    /// When no controller owns it: labels and ownerReference are added.
    IfUnowned,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A Kubernetes label selector: every `matchLabels` pair and every
/// `matchExpressions` requirement must hold. An empty selector matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must have exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements on labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values: at least one for `In` and `NotIn`, none otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The one namespace a related selection's `namespace` field names for a
/// parent in `parent_namespace` (none: every namespace): `*` is every
/// namespace, absent is the parent's.
pub fn namespace_wanted<'a>(
    namespace: Option<&'a str>,
    parent_namespace: Option<&'a str>,
) -> Option<&'a str> {
    match namespace {
        Some(ANY_NAMESPACE) => None,
        Some(namespace) => Some(namespace),
        None => parent_namespace,
    }
}

/// A related kind and which of its objects to pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedKind {
    /// `group/version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Only objects in this namespace (`*`: every namespace); the parent's
    /// when absent. Ignored for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only the object of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only objects whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Only objects carrying all these labels (the older form of
    /// `selector.matchLabels`; both apply when both are given).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Pass these objects only when the guest requests them (a
    /// `related-request` of the response): the selection above bounds what
    /// it can request, and only the parents that requested an object are
    /// triggered when it changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_request: bool,
}

impl RelatedKind {
    /// The label selector of the selection: `selector` and `matchLabels`
    /// together (`field` names it in errors).
    pub fn label_selector(&self, field: &str) -> Result<Selector, SelectorError> {
        let mut combined = self.selector.clone().unwrap_or_default();
        combined.match_labels.extend(
            self.match_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        combined.to_selector(field)
    }

    /// Where the selected objects are, for a parent in `parent_namespace`.
    pub fn namespace_for<'a>(&'a self, parent_namespace: Option<&'a str>) -> Option<&'a str> {
        namespace_wanted(self.namespace.as_deref(), parent_namespace)
    }

    /// Whether `object` (of `namespace` and `name`) is selected for a parent
    /// in `parent_namespace`; labels are filtered by the watch itself.
    pub fn selects(
        &self,
        namespaced: bool,
        parent_namespace: Option<&str>,
        (namespace, name): (Option<&str>, Option<&str>),
    ) -> bool {
        let wanted = self.namespace_for(parent_namespace);
        (!namespaced || wanted.is_none() || namespace == wanted)
            && self
                .name
                .as_deref()
                .is_none_or(|wanted| name == Some(wanted))
    }
}

/// One key of one ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigMapKey {
    /// The ConfigMap, in `spec.module.namespace`.
    pub name: String,
    /// The key in its `binaryData`.
    pub key: String,
}

/// Where a module's bytes come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleSource {
    /// The whole module in one ConfigMap key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKey>,
    /// The module split over several keys, concatenated in this order (for
    /// modules over a ConfigMap's ~1 MiB); zstd or gzip compression is
    /// detected by its magic bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ConfigMapKey>,
    /// Refuse any module whose sha256 (hex, of the uncompressed bytes) differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Namespace of the ConfigMaps: the Reconciler's own when absent (the
    /// host's for a ClusterReconciler). A namespaced Reconciler may only
    /// name its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Limits of each guest call and what the guest may write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Fuel units (about one per WebAssembly instruction) per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub fuel: Option<u64>,
    /// Wall-clock time per call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub timeout_ms: Option<u64>,
    /// Linear memory per call, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_memory_mib: Option<u32>,
    /// Desired objects per response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub max_objects: Option<u32>,
    /// Bytes per response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int64"))]
    pub max_response_bytes: Option<u64>,
    /// Kinds the guest may write: `spec.children` when absent, and never
    /// more (the host watches and prunes only those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_kinds: Option<Vec<TypeMeta>>,
    /// Namespaces children may land in besides the parent's own, which is
    /// always allowed; `*` allows any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<Vec<String>>,
    /// Whether cluster-scoped children are allowed.
    #[serde(default)]
    pub allow_cluster_scoped: bool,
}

fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_related_selection_by_namespace_name_and_labels() {
        let related: RelatedKind = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "name": "token",
            "selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            "matchLabels": {"team": "blue"},
        }))
        .unwrap();
        assert_eq!(
            related.label_selector("s").unwrap().to_string(),
            "team=blue,tier"
        );
        let table = [
            ((Some("shop"), Some("token")), true),
            ((Some("shop"), Some("other")), false),
            ((Some("elsewhere"), Some("token")), false),
        ];
        for (object, expected) in table {
            assert_eq!(
                related.selects(true, Some("shop"), object),
                expected,
                "{object:?}"
            );
        }
        // Cluster-scoped kinds have no namespace to match.
        assert!(related.selects(false, Some("shop"), (None, Some("token"))));
        let everywhere = RelatedKind {
            namespace: Some("*".into()),
            name: None,
            ..related
        };
        assert_eq!(everywhere.namespace_for(Some("shop")), None);
        assert!(everywhere.selects(true, Some("shop"), (Some("elsewhere"), Some("x"))));
    }
}
