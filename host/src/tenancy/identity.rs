//! Who a reconciler acts as: the host itself, or a ServiceAccount the host
//! impersonates so that Kubernetes RBAC bounds what the reconciler can do.

use std::fmt;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};

use super::Tenancy;
use crate::crd::{ReconcilerKey, ReconcilerSpec};

/// The identity a reconciler's writes (children, prune) and reads (parents,
/// related objects) are authorized as. Status, finalizers and events are
/// always written as the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The host's own identity: ClusterReconcilers without a ServiceAccount,
    /// and namespaced ones only when escalation is explicitly allowed.
    Host,
    /// A ServiceAccount, impersonated.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl Identity {
    /// The identity of reconciler `key`: `spec.serviceAccountName` (in the
    /// Reconciler's namespace, or the host's for a ClusterReconciler); else,
    /// for a namespaced Reconciler, the default ServiceAccount of its
    /// namespace (the host itself only when escalation is allowed); else,
    /// for a ClusterReconciler, the host.
    pub fn of(
        key: &ReconcilerKey,
        spec: &ReconcilerSpec,
        tenancy: &Tenancy,
        host_namespace: &str,
    ) -> Self {
        let namespace = key.namespace.as_deref().unwrap_or(host_namespace);
        let account = match (&spec.service_account_name, &key.namespace) {
            (Some(account), _) => account.as_str(),
            (None, Some(_)) if !tenancy.allow_escalation => &tenancy.default_service_account,
            (None, _) => return Self::Host,
        };
        Self::ServiceAccount {
            namespace: namespace.to_string(),
            name: account.to_string(),
        }
    }

    /// The Kubernetes user name (`system:serviceaccount:<namespace>:<name>`),
    /// or `None` for the host.
    pub fn username(&self) -> Option<String> {
        match self {
            Self::Host => None,
            Self::ServiceAccount { namespace, name } => {
                Some(format!("system:serviceaccount:{namespace}:{name}"))
            }
        }
    }

    /// A client acting as this identity, made from the host's configuration.
    pub fn client(&self, host: &kube::Config) -> kube::Result<kube::Client> {
        kube::Client::try_from(self.config(host))
    }

    /// The host's configuration, acting as this identity.
    pub fn config(&self, host: &kube::Config) -> kube::Config {
        let mut config = host.clone();
        if let Some(user) = self.username() {
            config.auth_info.impersonate = Some(user);
            // No impersonated groups: for a ServiceAccount the API server adds
            // its groups itself, impersonating groups would need the
            // `impersonate groups` permission (which reaches `system:masters`),
            // and groups the host's own configuration impersonates must never
            // be carried over to a tenant.
            config.auth_info.impersonate_groups = None;
        }
        config
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host => f.write_str("the host's own identity"),
            Self::ServiceAccount { namespace, name } => {
                write!(f, "ServiceAccount {namespace}/{name}")
            }
        }
    }
}

/// The user name the API server knows the host by (a `SelfSubjectReview`),
/// so that no reconciler is ever allowed to act as the host's own
/// ServiceAccount. `None` when the API server cannot say (logged).
pub async fn host_user(client: &kube::Client) -> Option<String> {
    let review = SelfSubjectReview::default();
    match Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
    {
        Ok(review) => review.status?.user_info?.username,
        Err(error) => {
            tracing::warn!(%error, "could not learn the host's own user name (SelfSubjectReview); reconcilers naming the host's ServiceAccount cannot be recognised");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(account: Option<&str>) -> ReconcilerSpec {
        serde_json::from_value(json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "MyApp"},
            "module": {"configMapRef": {"name": "m", "key": "k"}},
            "serviceAccountName": account,
        }))
        .unwrap()
    }

    fn account(namespace: &str, name: &str) -> Identity {
        Identity::ServiceAccount {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_namespaced_reconciler_acts_as_a_service_account_of_its_namespace() {
        let tenant = ReconcilerKey::namespaced("shop", "my-app");
        let tenancy = Tenancy::default();
        assert_eq!(
            Identity::of(&tenant, &spec(Some("deployer")), &tenancy, "sous-system"),
            account("shop", "deployer")
        );
        assert_eq!(
            Identity::of(&tenant, &spec(None), &tenancy, "sous-system"),
            account("shop", "default")
        );
        let custom = Tenancy {
            default_service_account: "sous-reconciler".into(),
            ..Tenancy::default()
        };
        assert_eq!(
            Identity::of(&tenant, &spec(None), &custom, "sous-system"),
            account("shop", "sous-reconciler")
        );
    }

    #[test]
    fn only_escalation_or_a_cluster_reconciler_acts_as_the_host() {
        let open = Tenancy {
            allow_escalation: true,
            ..Tenancy::default()
        };
        let tenant = ReconcilerKey::namespaced("shop", "my-app");
        assert_eq!(
            Identity::of(&tenant, &spec(None), &open, "sous-system"),
            Identity::Host
        );
        let cluster = ReconcilerKey::cluster("my-app");
        let tenancy = Tenancy::default();
        assert_eq!(
            Identity::of(&cluster, &spec(None), &tenancy, "sous-system"),
            Identity::Host
        );
        assert_eq!(
            Identity::of(&cluster, &spec(Some("ops")), &tenancy, "sous-system"),
            account("sous-system", "ops")
        );
    }

    #[test]
    fn the_impersonating_client_drops_the_hosts_impersonated_groups() {
        let mut host = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        host.auth_info.impersonate = Some("system:serviceaccount:sous-system:sous".into());
        host.auth_info.impersonate_groups = Some(vec!["system:masters".into()]);
        let identity = account("shop", "default");
        assert_eq!(
            identity.username().as_deref(),
            Some("system:serviceaccount:shop:default")
        );
        let config = identity.config(&host);
        assert_eq!(
            config.auth_info.impersonate.as_deref(),
            Some("system:serviceaccount:shop:default")
        );
        assert_eq!(config.auth_info.impersonate_groups, None);
        assert_eq!(
            Identity::Host.config(&host).auth_info.impersonate_groups,
            host.auth_info.impersonate_groups
        );
        assert_eq!(identity.to_string(), "ServiceAccount shop/default");
        assert_eq!(Identity::Host.username(), None);
    }
}
