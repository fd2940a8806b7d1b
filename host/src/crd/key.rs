//! The identity of one reconciler object, and the names derived from it that
//! the host stamps on what it writes.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// Which Reconciler or ClusterReconciler this is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReconcilerKey {
    /// The Reconciler's namespace; `None` for a ClusterReconciler.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

/// The longest value Kubernetes accepts for a label.
const MAX_LABEL_VALUE: usize = 63;

impl ReconcilerKey {
    /// A namespaced `Reconciler`.
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
        }
    }

    /// A `ClusterReconciler`.
    pub fn cluster(name: &str) -> Self {
        Self {
            namespace: None,
            name: name.to_string(),
        }
    }

    /// The value of the `sous.dev/reconciler` label on every child: unique
    /// per reconciler (`namespace.name`, or `name` for a ClusterReconciler),
    /// shortened with a hash when it would exceed a label's 63 characters.
    pub fn label_value(&self) -> String {
        let full = match &self.namespace {
            Some(namespace) => format!("{namespace}.{}", self.name),
            None => self.name.clone(),
        };
        if full.len() <= MAX_LABEL_VALUE {
            return full;
        }
        let hash = hex::encode(&Sha256::digest(full.as_bytes())[..5]);
        let keep = MAX_LABEL_VALUE - hash.len() - 1;
        let prefix = full[..keep].trim_end_matches(['.', '-']);
        format!("{prefix}-{hash}")
    }

    /// The server-side apply field manager of everything this reconciler writes.
    pub fn field_manager(&self) -> String {
        format!("sous.dev/{}", self.label_value())
    }
}

impl fmt::Display for ReconcilerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "Reconciler {namespace}/{}", self.name),
            None => write!(f, "ClusterReconciler {}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_and_cluster_reconcilers_label_apart() {
        let namespaced = ReconcilerKey::namespaced("shop", "my-app");
        let cluster = ReconcilerKey::cluster("my-app");
        assert_eq!(namespaced.label_value(), "shop.my-app");
        assert_eq!(cluster.label_value(), "my-app");
        assert_eq!(namespaced.field_manager(), "sous.dev/shop.my-app");
        assert_eq!(namespaced.to_string(), "Reconciler shop/my-app");
    }

    #[test]
    fn long_names_are_shortened_to_a_valid_unique_label() {
        let a = ReconcilerKey::namespaced(&"n".repeat(60), "first");
        let b = ReconcilerKey::namespaced(&"n".repeat(60), "second");
        for key in [&a, &b] {
            let label = key.label_value();
            assert!(label.len() <= MAX_LABEL_VALUE, "{label}");
            assert!(label.chars().last().unwrap().is_ascii_alphanumeric());
        }
        assert_ne!(a.label_value(), b.label_value());
    }
}
