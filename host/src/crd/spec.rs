//! `spec` of a Reconciler: what it watches, which module answers, within which policy.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The desired behaviour of a reconciler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcilerSpec {
    /// The watched kind: one reconcile per object of it (the parent).
    pub parent: TypeMeta,
    /// Kinds the guest may produce; the host watches them as owned children.
    #[serde(default)]
    pub children: Vec<TypeMeta>,
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

/// A related kind and which of its objects to pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedKind {
    /// `group/version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// Only objects in this namespace; the parent's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only objects carrying all these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
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
