//! `status` of a Reconciler: is it serving, with which module, how it went.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the host reports about a reconciler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcilerStatus {
    /// `Ready` (the controller runs) and `ModuleReady` (a module is loaded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// sha256 of the module serving now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_digest: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Guest calls made.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub reconciles: u64,
    /// Guest calls or applies that failed.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub errors: u64,
    /// The most recent error of any pass, as `parent: message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A status condition, as Kubernetes conventions define it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready` or `ModuleReady`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// UpperCamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
