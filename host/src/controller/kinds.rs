//! Resolving a reconciler's kinds through discovery: the parent, its
//! children and its related kinds, each with its REST resource and scope.

use kube::Client;
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};

use crate::crd::{ChildSpec, DeletePolicy, ReconcilerSpec, RelatedKind, TypeMeta};
use crate::validate::TypeRef;

/// One kind as the API server serves it.
#[derive(Debug, Clone)]
pub struct Kind {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether objects of it live in namespaces.
    pub namespaced: bool,
    /// Whether it has a `status` subresource.
    pub has_status: bool,
}

impl Kind {
    /// Its `apiVersion/Kind`.
    pub fn type_ref(&self) -> TypeRef {
        TypeRef {
            api_version: self.resource.api_version.clone(),
            kind: self.resource.kind.clone(),
        }
    }
}

/// Every kind a reconciler touches.
#[derive(Debug, Clone)]
pub struct Kinds {
    /// The watched kind.
    pub parent: Kind,
    /// Kinds the guest may produce.
    pub children: Vec<Kind>,
    /// Kinds passed read-only, with their selectors.
    pub related: Vec<(Kind, RelatedKind)>,
}

impl Kinds {
    /// The child kinds that are cluster-scoped (for the validation rules).
    pub fn cluster_scoped_children(&self) -> Vec<TypeRef> {
        self.children
            .iter()
            .filter(|kind| !kind.namespaced)
            .map(Kind::type_ref)
            .collect()
    }
}

/// Why a kind could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// The API server does not serve the kind (e.g. its CRD is not installed).
    #[error(
        "{role} kind {kind} is not served by the API server; install its CustomResourceDefinition"
    )]
    NotFound {
        /// `parent`, `child` or `related`.
        role: &'static str,
        /// The kind.
        kind: String,
    },
    /// A child kind's rules need a verb the API server does not serve for it.
    #[error(
        "child kind {kind} has `{rule}`, which needs the `{verb}` verb, and the API server does not serve it for that kind; remove the rule"
    )]
    RuleUnsupported {
        /// The kind.
        kind: String,
        /// The rule, as written in YAML.
        rule: &'static str,
        /// The verb it needs.
        verb: &'static str,
    },
    /// Discovery itself failed.
    #[error("discovery of {kind} failed: {source}")]
    Discovery {
        /// The kind.
        kind: String,
        /// The API error.
        source: kube::Error,
    },
}

impl KindError {
    /// The reason of the `Ready=False` condition this error sets.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { role: "parent", .. } => "ParentKindNotFound",
            Self::NotFound { role: "child", .. } => "ChildKindNotFound",
            Self::NotFound { .. } => "RelatedKindNotFound",
            Self::RuleUnsupported { .. } => "InvalidSpec",
            Self::Discovery { .. } => "DiscoveryFailed",
        }
    }
}

/// Resolves every kind of `spec`, parent first.
pub async fn resolve(client: &Client, spec: &ReconcilerSpec) -> Result<Kinds, KindError> {
    let parent = resolve_parent(client, spec).await?;
    let mut children = Vec::with_capacity(spec.children.len());
    for child in &spec.children {
        let (resource, capabilities) = discover(client, "child", &child.type_meta()).await?;
        check_rules(child, &capabilities)?;
        children.push(kind_of(resource, &capabilities));
    }
    let mut related = Vec::with_capacity(spec.related.len());
    for kind in &spec.related {
        let type_meta = TypeMeta {
            api_version: kind.api_version.clone(),
            kind: kind.kind.clone(),
        };
        related.push((
            resolve_one(client, "related", &type_meta).await?,
            kind.clone(),
        ));
    }
    Ok(Kinds {
        parent,
        children,
        related,
    })
}

/// Resolves only the parent kind of `spec`.
pub async fn resolve_parent(client: &Client, spec: &ReconcilerSpec) -> Result<Kind, KindError> {
    resolve_one(client, "parent", &spec.parent).await
}

async fn resolve_one(
    client: &Client,
    role: &'static str,
    type_meta: &TypeMeta,
) -> Result<Kind, KindError> {
    let (resource, capabilities) = discover(client, role, type_meta).await?;
    Ok(kind_of(resource, &capabilities))
}

/// The verbs a child kind's rules need beyond applying and pruning: a
/// release patches, a recreate deletes.
fn check_rules(child: &ChildSpec, capabilities: &ApiCapabilities) -> Result<(), KindError> {
    let needs = [
        (
            child.delete_policy == DeletePolicy::Orphan,
            "deletePolicy: Orphan",
            "patch",
        ),
        (
            child.update_method().recreates(),
            "updateStrategy.method: Recreate",
            "delete",
        ),
    ];
    for (rule, verb) in needs
        .into_iter()
        .filter(|(applies, ..)| *applies)
        .map(|(_, rule, verb)| (rule, verb))
    {
        if !capabilities.operations.iter().any(|served| served == verb) {
            return Err(KindError::RuleUnsupported {
                kind: format!("{}/{}", child.api_version, child.kind),
                rule,
                verb,
            });
        }
    }
    Ok(())
}

async fn discover(
    client: &Client,
    role: &'static str,
    type_meta: &TypeMeta,
) -> Result<(ApiResource, ApiCapabilities), KindError> {
    let gvk = type_meta.gvk();
    let kind = format!("{}/{}", type_meta.api_version, type_meta.kind);
    match discovery::pinned_kind(client, &gvk).await {
        Ok(found) => Ok(found),
        Err(error) if is_not_found(&error) => Err(KindError::NotFound { role, kind }),
        Err(source) => Err(KindError::Discovery { kind, source }),
    }
}

fn kind_of(resource: ApiResource, capabilities: &ApiCapabilities) -> Kind {
    Kind {
        resource,
        namespaced: capabilities.scope == Scope::Namespaced,
        has_status: capabilities
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural == "status"),
    }
}

fn is_not_found(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_rule_needing_an_unserved_verb_is_refused() {
        let child: ChildSpec = serde_json::from_value(json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "deletePolicy": "Orphan", "updateStrategy": {"method": "Recreate"},
        }))
        .unwrap();
        let capabilities = |verbs: &[&str]| ApiCapabilities {
            scope: Scope::Cluster,
            subresources: Vec::new(),
            operations: verbs.iter().map(|v| v.to_string()).collect(),
        };
        let error = check_rules(&child, &capabilities(&["create"])).unwrap_err();
        assert_eq!(error.reason(), "InvalidSpec");
        assert!(
            error
                .to_string()
                .contains("`deletePolicy: Orphan`, which needs the `patch` verb"),
            "{error}"
        );
        let error = check_rules(&child, &capabilities(&["create", "patch"])).unwrap_err();
        assert!(
            error.to_string().contains("needs the `delete` verb"),
            "{error}"
        );
        assert!(check_rules(&child, &capabilities(&["patch", "delete"])).is_ok());
    }
}
