//! Access: a confined reconciler is handed parents and related objects only
//! where its identity may read them. The host serves every reconciler from
//! its own shared watch caches, so it asks the API server first, with one
//! `SelfSubjectAccessReview` per kind, verb and namespace made *as* that
//! identity (impersonated): the answer is exactly the one the API server
//! would give the ServiceAccount itself, groups included, and the host needs
//! no right to review anyone else's access.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::Identity;
use crate::controller::kinds::{Kind, Kinds};

/// What the host does with parents and related objects: it lists and
/// watches them.
const READ_VERBS: [&str; 2] = ["list", "watch"];

/// Why a confined reconciler may not be served.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The identity may not read a kind the reconciler needs.
    #[error(
        "{identity} may not {verb} {resource} {place}, which the reconciler reads as its {role} kind; grant it get, list and watch there with a Role and RoleBinding (`sous push` creates them), or name another `spec.serviceAccountName`{why}"
    )]
    Denied {
        /// Who asked.
        identity: Identity,
        /// `parent`, `child` or `related`.
        role: &'static str,
        /// The verb refused.
        verb: &'static str,
        /// `plural.group`, as RBAC names it.
        resource: String,
        /// `in namespace x`, or `cluster-wide`.
        place: String,
        /// The authorizer's own words, when it gave any.
        why: String,
    },
    /// The review itself failed.
    #[error("could not review what {identity} may read: {source}")]
    Review {
        /// Who asked.
        identity: Identity,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl AccessError {
    /// UpperCamelCase reason of the `Ready=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Denied { role: "parent", .. } => "ParentForbidden",
            Self::Denied { .. } => "RelatedForbidden",
            Self::Review { .. } => "AccessReviewFailed",
        }
    }
}

/// One read the reconciler needs: a kind, in a namespace or cluster-wide.
#[derive(Debug, Clone)]
pub struct Read<'a> {
    /// `parent`, `child` or `related`.
    pub role: &'static str,
    /// The kind.
    pub kind: &'a Kind,
    /// The namespace; `None` for a cluster-scoped kind.
    pub namespace: Option<&'a str>,
}

/// The reads of a reconciler confined to `namespace`: its parents and
/// children there (the guest is shown both), and each related kind there
/// (or cluster-wide when cluster-scoped).
pub fn reads<'a>(kinds: &'a Kinds, namespace: &'a str) -> Vec<Read<'a>> {
    let read = |role, kind: &'a Kind| Read {
        role,
        kind,
        namespace: kind.namespaced.then_some(namespace),
    };
    std::iter::once(read("parent", &kinds.parent))
        .chain(kinds.children.iter().map(|kind| read("child", kind)))
        .chain(kinds.related.iter().map(|(kind, _)| read("related", kind)))
        .collect()
}

/// Asks the API server, as `identity` (`client` impersonates it), whether it
/// may make every read; the first refusal is the answer.
pub async fn check(
    client: &kube::Client,
    identity: &Identity,
    reads: &[Read<'_>],
) -> Result<(), AccessError> {
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    for read in reads {
        for verb in READ_VERBS {
            let review = api
                .create(&PostParams::default(), &review(read, verb))
                .await
                .map_err(|source| AccessError::Review {
                    identity: identity.clone(),
                    source,
                })?;
            let status = review.status.unwrap_or_default();
            if !status.allowed {
                return Err(denied(identity, read, verb, status.reason));
            }
        }
    }
    Ok(())
}

fn review(read: &Read, verb: &str) -> SelfSubjectAccessReview {
    let resource = &read.kind.resource;
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(resource.group.clone()),
                version: Some(resource.version.clone()),
                resource: Some(resource.plural.clone()),
                namespace: read.namespace.map(str::to_string),
                verb: Some(verb.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    }
}

fn denied(
    identity: &Identity,
    read: &Read,
    verb: &'static str,
    why: Option<String>,
) -> AccessError {
    let resource = &read.kind.resource;
    AccessError::Denied {
        identity: identity.clone(),
        role: read.role,
        verb,
        resource: if resource.group.is_empty() {
            resource.plural.clone()
        } else {
            format!("{}.{}", resource.plural, resource.group)
        },
        place: match read.namespace {
            Some(namespace) => format!("in namespace `{namespace}`"),
            None => "cluster-wide".to_string(),
        },
        why: why
            .filter(|why| !why.is_empty())
            .map(|why| format!(" (the API server said: {why})"))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;

    use super::*;
    use crate::crd::RelatedKind;

    fn kind(group: &str, name: &str, namespaced: bool) -> Kind {
        Kind {
            resource: ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1", name)),
            namespaced,
            has_status: false,
        }
    }

    fn related(kind: &Kind) -> RelatedKind {
        RelatedKind {
            api_version: kind.resource.api_version.clone(),
            kind: kind.resource.kind.clone(),
            namespace: None,
            name: None,
            selector: None,
            match_labels: Default::default(),
            on_request: false,
        }
    }

    #[test]
    fn parents_children_and_namespaced_related_kinds_are_read_in_the_namespace() {
        let secrets = kind("", "Secret", true);
        let namespaces = kind("", "Namespace", false);
        let kinds = Kinds {
            parent: kind("example.sous.dev", "MyApp", true),
            children: vec![kind("apps", "Deployment", true)],
            related: vec![
                (secrets.clone(), related(&secrets)),
                (namespaces.clone(), related(&namespaces)),
            ],
        };
        let reads = reads(&kinds, "tenant");
        let summary: Vec<(&str, &str, Option<&str>)> = reads
            .iter()
            .map(|r| (r.role, r.kind.resource.plural.as_str(), r.namespace))
            .collect();
        assert_eq!(
            summary,
            [
                ("parent", "myapps", Some("tenant")),
                ("child", "deployments", Some("tenant")),
                ("related", "secrets", Some("tenant")),
                ("related", "namespaces", None),
            ]
        );
        let attributes = review(&reads[0], "watch").spec.resource_attributes.unwrap();
        assert_eq!(attributes.group.as_deref(), Some("example.sous.dev"));
        assert_eq!(attributes.resource.as_deref(), Some("myapps"));
        assert_eq!(attributes.namespace.as_deref(), Some("tenant"));
        assert_eq!(attributes.verb.as_deref(), Some("watch"));
    }

    #[test]
    fn a_refusal_names_who_what_where_and_the_remedy() {
        let secrets = kind("", "Secret", true);
        let identity = Identity::ServiceAccount {
            namespace: "tenant".into(),
            name: "default".into(),
        };
        let read = Read {
            role: "related",
            kind: &secrets,
            namespace: Some("tenant"),
        };
        let error = denied(&identity, &read, "list", Some(String::new()));
        assert_eq!(error.reason(), "RelatedForbidden");
        assert_eq!(
            error.to_string(),
            "ServiceAccount tenant/default may not list secrets in namespace `tenant`, which the reconciler reads as its related kind; grant it get, list and watch there with a Role and RoleBinding (`sous push` creates them), or name another `spec.serviceAccountName`"
        );
        let parents = kind("example.sous.dev", "MyApp", false);
        let read = Read {
            role: "parent",
            kind: &parents,
            namespace: None,
        };
        let error = denied(
            &identity,
            &read,
            "watch",
            Some("no RBAC policy matched".into()),
        );
        assert_eq!(error.reason(), "ParentForbidden");
        assert!(
            error
                .to_string()
                .contains("may not watch myapps.example.sous.dev cluster-wide")
                && error
                    .to_string()
                    .ends_with("(the API server said: no RBAC policy matched)"),
            "{error}"
        );
    }
}
