//! Tenancy: what a namespaced `Reconciler` may reach. A team creates
//! Reconcilers in its own namespace; a cluster administrator creates
//! ClusterReconcilers. The host confines the first to their namespace
//! whatever their `spec.policy` says ([`confine`]), acts for them as a
//! ServiceAccount of that namespace ([`Identity`]), hands them only what that
//! ServiceAccount may read ([`access`]), and `sous push` grants that
//! ServiceAccount exactly what the reconciler's kinds need ([`grants`]).

pub mod access;
pub mod confine;
pub mod grants;
mod identity;

use std::time::Duration;

pub use identity::{Identity, host_user};

/// How often a running confined reconciler's read access is reviewed again
/// unless the administrator says otherwise.
pub const DEFAULT_ACCESS_RECHECK: Duration = Duration::from_secs(60);

/// The ServiceAccount a namespaced Reconciler without
/// `spec.serviceAccountName` acts as, unless the administrator names another.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// How the host treats namespaced Reconcilers (`sous run` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    /// The ServiceAccount (of the Reconciler's own namespace) that a
    /// namespaced Reconciler without `spec.serviceAccountName` acts as.
    pub default_service_account: String,
    /// Run namespaced Reconcilers unconfined and, without
    /// `spec.serviceAccountName`, as the host itself: whoever may create a
    /// Reconciler may then take over the cluster. Off unless an
    /// administrator asks for it.
    pub allow_escalation: bool,
    /// How often a running confined reconciler's read access is reviewed
    /// again, so that revoking its ServiceAccount's Role stops what it is
    /// handed.
    pub access_recheck: Duration,
}

impl Default for Tenancy {
    fn default() -> Self {
        Self {
            default_service_account: DEFAULT_SERVICE_ACCOUNT.to_string(),
            allow_escalation: false,
            access_recheck: DEFAULT_ACCESS_RECHECK,
        }
    }
}
