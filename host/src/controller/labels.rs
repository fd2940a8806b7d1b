//! The labels and finalizer the host stamps, and the selector that finds a
//! reconciler's children.

use crate::crd::ReconcilerKey;

/// Label on every child: which reconciler wrote it.
pub const RECONCILER: &str = "sous.dev/reconciler";

/// Label on every child: the UID of its parent.
pub const PARENT_UID: &str = "sous.dev/parent-uid";

/// Finalizer the host adds to parents when the Reconciler asks for one.
pub const FINALIZER: &str = "sous.dev/finalizer";

/// The label selector matching every child of `key`.
pub fn children_selector(key: &ReconcilerKey) -> String {
    format!("{RECONCILER}={}", key.label_value())
}
