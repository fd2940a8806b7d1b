//! Grants: the ServiceAccount, Role and RoleBinding that give a namespaced
//! reconciler exactly what its declared kinds need in its namespace — read
//! (and label) its parents, read its related objects, write and delete its
//! children — and
//! nothing else. `sous push` applies them; the RBAC of the namespace bounds
//! the rest.

use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ApiResource, ObjectMeta, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::validate::TypeRef;

/// How a reconciler uses a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    /// Its parents: listed, watched, and patched for the labels and
    /// annotations a guest sets on them.
    Parent,
    /// Its children: server-side applied and pruned.
    Child,
    /// Read-only related objects.
    Related,
}

impl Use {
    /// The RBAC verbs this use needs.
    fn verbs(self) -> &'static [&'static str] {
        match self {
            Self::Parent => &["get", "list", "watch", "patch"],
            Self::Related => &["get", "list", "watch"],
            Self::Child => &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
        }
    }
}

/// One resource a reconciler uses, as RBAC names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// How it is used.
    pub use_: Use,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The plural resource name.
    pub resource: String,
}

impl Need {
    fn new(use_: Use, resource: &ApiResource) -> Self {
        Self {
            use_,
            group: resource.group.clone(),
            resource: resource.plural.clone(),
        }
    }
}

/// Every kind of a reconciler with its use: the parent, the children, the
/// related kinds.
pub fn uses(
    parent: TypeRef,
    children: impl IntoIterator<Item = TypeRef>,
    related: impl IntoIterator<Item = TypeRef>,
) -> Vec<(Use, TypeRef)> {
    std::iter::once((Use::Parent, parent))
        .chain(children.into_iter().map(|kind| (Use::Child, kind)))
        .chain(related.into_iter().map(|kind| (Use::Related, kind)))
        .collect()
}

fn gvk(kind: &TypeRef) -> GroupVersionKind {
    let (group, version) = kind
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &kind.api_version));
    GroupVersionKind::gvk(group, version, &kind.kind)
}

/// The needs of `uses`, resources named by Kubernetes' plural convention
/// (offline: no discovery).
pub fn conventional(uses: &[(Use, TypeRef)]) -> Vec<Need> {
    uses.iter()
        .map(|(use_, kind)| Need::new(*use_, &ApiResource::from_gvk(&gvk(kind))))
        .collect()
}

/// The needs of `uses` as discovery names them.
#[derive(Debug, Default)]
pub struct Discovered {
    /// What a Role can grant.
    pub needs: Vec<Need>,
    /// Kinds not served (yet), named by convention and included in `needs`,
    /// with the discovery error.
    pub unserved: Vec<(TypeRef, String)>,
    /// Cluster-scoped kinds, with their plural: a Role cannot grant them.
    pub cluster_scoped: Vec<(TypeRef, String)>,
}

/// Names the resources of `uses` through discovery.
pub async fn discover(client: &Client, uses: &[(Use, TypeRef)]) -> Discovered {
    let mut discovered = Discovered::default();
    for (use_, kind) in uses {
        match discovery::pinned_kind(client, &gvk(kind)).await {
            Ok((resource, capabilities)) if capabilities.scope == Scope::Cluster => {
                discovered
                    .cluster_scoped
                    .push((kind.clone(), resource.plural));
            }
            Ok((resource, _)) => discovered.needs.push(Need::new(*use_, &resource)),
            Err(error) => {
                let resource = ApiResource::from_gvk(&gvk(kind));
                discovered.needs.push(Need::new(*use_, &resource));
                discovered.unserved.push((kind.clone(), error.to_string()));
            }
        }
    }
    discovered
}

/// The objects that grant a reconciler's needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    /// The identity the reconciler acts as.
    pub service_account: ServiceAccount,
    /// What it may do in its namespace.
    pub role: Role,
    /// The Role, bound to the ServiceAccount.
    pub binding: RoleBinding,
}

/// The label on every object `grants` builds.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "sous");

/// The grants of ServiceAccount `account` in `namespace` for `needs`: one
/// rule per resource, with the union of the verbs its uses need.
pub fn grants(namespace: &str, account: &str, needs: &[Need]) -> Grants {
    let mut verbs: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for need in needs {
        let entry = verbs.entry((&need.group, &need.resource)).or_default();
        for verb in need.use_.verbs() {
            if !entry.contains(verb) {
                entry.push(verb);
            }
        }
    }
    let rules = verbs
        .into_iter()
        .map(|((group, resource), verbs)| PolicyRule {
            api_groups: Some(vec![group.to_string()]),
            resources: Some(vec![resource.to_string()]),
            verbs: verbs.into_iter().map(str::to_string).collect(),
            ..PolicyRule::default()
        })
        .collect();
    let name = role_name(account);
    let metadata = |name: &str| ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY.0.to_string(),
            MANAGED_BY.1.to_string(),
        )])),
        ..ObjectMeta::default()
    };
    Grants {
        service_account: ServiceAccount {
            metadata: metadata(account),
            ..ServiceAccount::default()
        },
        role: Role {
            metadata: metadata(&name),
            rules: Some(rules),
        },
        binding: RoleBinding {
            metadata: metadata(&name),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: name.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account.to_string(),
                namespace: Some(namespace.to_string()),
                ..Subject::default()
            }]),
        },
    }
}

impl Grants {
    /// Server-side applies the three objects as `field_manager`, in order;
    /// the first failure names its object.
    pub async fn apply(&self, client: &Client, field_manager: &str) -> Result<(), GrantError> {
        apply_one(client, &self.service_account, field_manager).await?;
        apply_one(client, &self.role, field_manager).await?;
        apply_one(client, &self.binding, field_manager).await
    }
}

/// An object of the grants the API server refused.
#[derive(Debug, thiserror::Error)]
#[error("applying {kind} {namespace}/{name} failed: {source}")]
pub struct GrantError {
    /// Its kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

async fn apply_one<K>(client: &Client, object: &K, field_manager: &str) -> Result<(), GrantError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let (name, namespace) = (object.name_any(), object.namespace().unwrap_or_default());
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(field_manager).force();
    match api.patch(&name, &params, &Patch::Apply(object)).await {
        Ok(_) => Ok(()),
        Err(source) => Err(GrantError {
            kind: K::kind(&()).into_owned(),
            namespace,
            name,
            source,
        }),
    }
}

/// The name of the Role and RoleBinding of ServiceAccount `account`.
pub fn role_name(account: &str) -> String {
    format!("sous-reconciler-{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(use_: Use, group: &str, resource: &str) -> Need {
        Need {
            use_,
            group: group.into(),
            resource: resource.into(),
        }
    }

    #[test]
    fn each_resource_gets_exactly_the_verbs_of_its_uses() {
        let grants = grants(
            "shop",
            "my-app",
            &[
                need(Use::Parent, "example.sous.dev", "myapps"),
                need(Use::Child, "apps", "deployments"),
                need(Use::Child, "", "services"),
                need(Use::Related, "", "services"),
                need(Use::Related, "", "secrets"),
            ],
        );
        let rules: Vec<(String, String, Vec<String>)> = grants
            .role
            .rules
            .unwrap()
            .into_iter()
            .map(|rule| {
                (
                    rule.api_groups.unwrap().join(","),
                    rule.resources.unwrap().join(","),
                    rule.verbs,
                )
            })
            .collect();
        let read = ["get", "list", "watch"].map(String::from).to_vec();
        let label = ["get", "list", "watch", "patch"].map(String::from).to_vec();
        let write: Vec<String> = [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            rules,
            [
                (String::new(), "secrets".into(), read.clone()),
                (String::new(), "services".into(), write.clone()),
                ("apps".into(), "deployments".into(), write),
                ("example.sous.dev".into(), "myapps".into(), label),
            ]
        );
    }

    #[test]
    fn offline_resources_are_named_by_the_plural_convention() {
        let kind = |text: &str| TypeRef::parse(text).unwrap();
        let uses = uses(
            kind("example.sous.dev/v1/MyApp"),
            [kind("networking.k8s.io/v1/NetworkPolicy")],
            [kind("v1/Secret")],
        );
        assert_eq!(
            conventional(&uses),
            [
                need(Use::Parent, "example.sous.dev", "myapps"),
                need(Use::Child, "networking.k8s.io", "networkpolicies"),
                need(Use::Related, "", "secrets"),
            ]
        );
    }

    #[test]
    fn the_binding_names_the_role_and_the_account_of_the_namespace() {
        let grants = grants(
            "shop",
            "my-app",
            &[need(Use::Parent, "example.sous.dev", "myapps")],
        );
        assert_eq!(
            grants.service_account.metadata.name.as_deref(),
            Some("my-app")
        );
        assert_eq!(
            grants.role.metadata.name.as_deref(),
            Some("sous-reconciler-my-app")
        );
        assert_eq!(grants.binding.role_ref.name, "sous-reconciler-my-app");
        assert_eq!(grants.binding.role_ref.kind, "Role");
        let subject = &grants.binding.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (
                subject.kind.as_str(),
                subject.name.as_str(),
                subject.namespace.as_deref()
            ),
            ("ServiceAccount", "my-app", Some("shop"))
        );
        for metadata in [
            &grants.service_account.metadata,
            &grants.role.metadata,
            &grants.binding.metadata,
        ] {
            assert_eq!(metadata.namespace.as_deref(), Some("shop"));
            assert_eq!(
                metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
                "sous"
            );
        }
    }
}
