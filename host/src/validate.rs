//! Checks the shape of every desired object before anything could be applied.
//! All or nothing: one bad object rejects the whole response.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::runtime::Desired;

/// An object's `apiVersion` and `kind`, e.g. `apps/v1` + `Deployment`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRef {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// The kind.
    pub kind: String,
}

impl TypeRef {
    /// Parses `apps/v1/Deployment` or `v1/Service`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.rsplit_once('/') {
            Some((api_version, kind)) if !api_version.is_empty() && !kind.is_empty() => Ok(Self {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            }),
            _ => Err(format!(
                "`{text}` is not a kind; write it as apiVersion/Kind, e.g. `apps/v1/Deployment` or `v1/Service`"
            )),
        }
    }

    fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    /// Whether both name the same resource, in any version: the group and
    /// kind agree (a resource's scope is the same in all its versions).
    pub fn same_resource(&self, other: &Self) -> bool {
        self.kind == other.kind && self.group() == other.group()
    }
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

/// Where namespaced children may land.
///
/// The parent's own namespace is always allowed: it is where a namespaced
/// child without `metadata.namespace` goes, and the only namespace in which
/// the child's owner reference to a namespaced parent is valid. A listed set
/// widens it; it never excludes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NamespaceRule {
    /// Any namespace (offline, and `allowedNamespaces: ["*"]`).
    #[default]
    Any,
    /// The parent's namespace only: nothing namespaced when the parent is
    /// cluster-scoped.
    Parent,
    /// The parent's namespace and these.
    Listed(Vec<String>),
}

impl NamespaceRule {
    fn allows(&self, namespace: &str, parent_namespace: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::Parent => parent_namespace == Some(namespace),
            Self::Listed(listed) => {
                parent_namespace == Some(namespace) || listed.iter().any(|n| n == namespace)
            }
        }
    }

    /// The allowed namespaces in words, for error messages.
    fn describe(&self, parent_namespace: Option<&str>) -> String {
        let parent = parent_namespace.map(|n| format!("`{n}` (the parent's)"));
        let listed = match self {
            Self::Any => return "any".into(),
            Self::Parent => Vec::new(),
            Self::Listed(listed) => listed.iter().map(|n| format!("`{n}`")).collect(),
        };
        let all: Vec<_> = parent.into_iter().chain(listed).collect();
        if all.is_empty() {
            "none (the parent is cluster-scoped)".into()
        } else {
            all.join(", ")
        }
    }
}

/// What desired objects must satisfy beyond their basic shape.
///
/// `Rules::default()` is the offline behaviour: any kind, any namespace, no
/// kind known to be cluster-scoped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Kinds the guest may produce; `None` allows any.
    pub allowed_kinds: Option<Vec<TypeRef>>,
    /// Where namespaced children may land.
    pub namespaces: NamespaceRule,
    /// The kinds that are cluster-scoped (from discovery, in a cluster); any
    /// version of a listed group and kind counts. Their children get no
    /// namespace defaulted and may carry none.
    pub cluster_scoped: Vec<TypeRef>,
    /// Whether children of a cluster-scoped kind are allowed at all.
    pub allow_cluster_scoped: bool,
}

impl Rules {
    fn is_cluster_scoped(&self, kind: &TypeRef) -> bool {
        self.cluster_scoped.iter().any(|c| c.same_resource(kind))
    }
}

/// The first problem found in a response; nothing of it may be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// A required field is missing or not a non-empty string.
    #[error("child #{index}: `{field}` is missing or not a non-empty string")]
    MissingField {
        /// 1-based position in the response.
        index: usize,
        /// The field, e.g. `metadata.name`.
        field: &'static str,
    },
    /// A name or namespace Kubernetes would refuse.
    #[error(
        "child #{index} ({object}): {field} `{value}` is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most {max} characters)"
    )]
    InvalidName {
        /// 1-based position.
        index: usize,
        /// The object, as `apiVersion/Kind name`.
        object: String,
        /// `metadata.name` or `metadata.namespace`.
        field: &'static str,
        /// The offending value.
        value: String,
        /// The length limit for that field.
        max: usize,
    },
    /// The same object twice.
    #[error("child #{index} ({object}) duplicates child #{first}")]
    Duplicate {
        /// 1-based position of the second occurrence.
        index: usize,
        /// 1-based position of the first.
        first: usize,
        /// The object.
        object: String,
    },
    /// A kind outside the allowlist.
    #[error("child #{index} ({object}): kind `{kind}` is not allowed; allowed kinds: {allowed}")]
    KindNotAllowed {
        /// 1-based position.
        index: usize,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
        /// The allowlist, comma-separated.
        allowed: String,
    },
    /// A namespaced child outside the allowed namespaces.
    #[error(
        "child #{index} ({object}): namespace `{namespace}` is not allowed; allowed namespaces: {allowed}; widen `policy.allowedNamespaces` or write the child elsewhere"
    )]
    NamespaceNotAllowed {
        /// 1-based position.
        index: usize,
        /// The object.
        object: String,
        /// Its namespace.
        namespace: String,
        /// The allowed namespaces, in words.
        allowed: String,
    },
    /// A namespaced child without a namespace, of a cluster-scoped parent,
    /// when namespaces are restricted: nothing to default it to.
    #[error(
        "child #{index} ({object}): `metadata.namespace` is missing and the parent is cluster-scoped, so there is none to default to; set it (allowed namespaces: {allowed})"
    )]
    MissingNamespace {
        /// 1-based position.
        index: usize,
        /// The object.
        object: String,
        /// The allowed namespaces, in words.
        allowed: String,
    },
    /// A child of a cluster-scoped kind when the policy allows none.
    #[error(
        "child #{index} ({object}): `{kind}` is cluster-scoped and cluster-scoped children are not allowed; set `policy.allowClusterScoped: true` to allow them"
    )]
    ClusterScopedNotAllowed {
        /// 1-based position.
        index: usize,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
    },
    /// A child of a cluster-scoped kind that names a namespace.
    #[error(
        "child #{index} ({object}): `{kind}` is cluster-scoped but has `metadata.namespace: {namespace}`; remove the namespace"
    )]
    NamespaceOnClusterScoped {
        /// 1-based position.
        index: usize,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
        /// The namespace it carries.
        namespace: String,
    },
}

/// Validates every child of `desired` against `rules` and defaults a
/// namespaced child's namespace to the parent's (a cluster-scoped child gets
/// none). Returns the children ready to apply, or the first problem.
pub fn validate(
    mut desired: Desired,
    parent: &Value,
    rules: &Rules,
) -> Result<Desired, ValidationError> {
    let parent_namespace = parent["metadata"]["namespace"].as_str();
    let mut seen = HashMap::new();
    for (position, child) in desired.children.iter_mut().enumerate() {
        let index = position + 1;
        let kind = TypeRef {
            api_version: required(child, &["apiVersion"], index, "apiVersion")?,
            kind: required(child, &["kind"], index, "kind")?,
        };
        let name = required(child, &["metadata", "name"], index, "metadata.name")?;
        let object = format!("{kind} `{name}`");
        check_name(&name, NAME_MAX, index, &object, "metadata.name")?;
        if let Some(allowed) = rules
            .allowed_kinds
            .as_ref()
            .filter(|allowed| !allowed.contains(&kind))
        {
            return Err(ValidationError::KindNotAllowed {
                index,
                object,
                kind,
                allowed: allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let namespace = if rules.is_cluster_scoped(&kind) {
            check_cluster_scoped(child, rules, index, &object, &kind)?;
            None
        } else {
            let namespace = child_namespace(child, parent_namespace, index, &object)?;
            check_namespace(
                namespace.as_deref(),
                parent_namespace,
                rules,
                index,
                &object,
            )?;
            namespace
        };
        let identity = (kind.group().to_string(), kind.kind.clone(), namespace, name);
        if let Some(first) = seen.insert(identity, index) {
            return Err(ValidationError::Duplicate {
                index,
                first,
                object,
            });
        }
    }
    Ok(desired)
}

/// A cluster-scoped child: allowed at all, and without a namespace.
fn check_cluster_scoped(
    child: &Value,
    rules: &Rules,
    index: usize,
    object: &str,
    kind: &TypeRef,
) -> Result<(), ValidationError> {
    if !rules.allow_cluster_scoped {
        return Err(ValidationError::ClusterScopedNotAllowed {
            index,
            object: object.to_string(),
            kind: kind.clone(),
        });
    }
    match child["metadata"]["namespace"]
        .as_str()
        .filter(|namespace| !namespace.is_empty())
    {
        Some(namespace) => Err(ValidationError::NamespaceOnClusterScoped {
            index,
            object: object.to_string(),
            kind: kind.clone(),
            namespace: namespace.to_string(),
        }),
        None => Ok(()),
    }
}

/// A namespaced child's namespace: its own, checked, or the parent's,
/// written into it.
fn child_namespace(
    child: &mut Value,
    parent_namespace: Option<&str>,
    index: usize,
    object: &str,
) -> Result<Option<String>, ValidationError> {
    match child["metadata"]["namespace"].as_str() {
        Some(namespace) => {
            check_name(
                namespace,
                NAMESPACE_MAX,
                index,
                object,
                "metadata.namespace",
            )?;
            Ok(Some(namespace.to_string()))
        }
        None => {
            if let Some(namespace) = parent_namespace {
                child["metadata"]["namespace"] = Value::from(namespace);
            }
            Ok(parent_namespace.map(str::to_string))
        }
    }
}

fn check_namespace(
    namespace: Option<&str>,
    parent_namespace: Option<&str>,
    rules: &Rules,
    index: usize,
    object: &str,
) -> Result<(), ValidationError> {
    let allowed = || rules.namespaces.describe(parent_namespace);
    match namespace {
        // Unrestricted: a cluster-scoped parent's namespaced child may stay
        // without one (offline, where scopes are unknown).
        None if rules.namespaces == NamespaceRule::Any => Ok(()),
        None => Err(ValidationError::MissingNamespace {
            index,
            object: object.to_string(),
            allowed: allowed(),
        }),
        Some(namespace) if rules.namespaces.allows(namespace, parent_namespace) => Ok(()),
        Some(namespace) => Err(ValidationError::NamespaceNotAllowed {
            index,
            object: object.to_string(),
            namespace: namespace.to_string(),
            allowed: allowed(),
        }),
    }
}

fn required(
    child: &Value,
    path: &[&str],
    index: usize,
    field: &'static str,
) -> Result<String, ValidationError> {
    path.iter()
        .try_fold(child, |value, key| value.get(key))
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
        .ok_or(ValidationError::MissingField { index, field })
}

/// The longest object name Kubernetes accepts.
const NAME_MAX: usize = 253;
/// The longest namespace Kubernetes accepts.
const NAMESPACE_MAX: usize = 63;

/// Whether `value` could name a namespace.
pub fn is_valid_namespace(value: &str) -> bool {
    is_valid_name(value, NAMESPACE_MAX)
}

/// Whether `value` could name an object such as a ServiceAccount (a DNS-1123
/// subdomain).
pub fn is_valid_object_name(value: &str) -> bool {
    is_valid_name(value, NAME_MAX)
}

/// A DNS-1123 subdomain of at most `max` characters: what Kubernetes accepts
/// for most object names.
fn is_valid_name(value: &str, max: usize) -> bool {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alphanumeric =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    value.len() <= max
        && value.chars().all(valid_char)
        && alphanumeric(value.chars().next())
        && alphanumeric(value.chars().last())
}

fn check_name(
    value: &str,
    max: usize,
    index: usize,
    object: &str,
    field: &'static str,
) -> Result<(), ValidationError> {
    if is_valid_name(value, max) {
        Ok(())
    } else {
        Err(ValidationError::InvalidName {
            index,
            object: object.to_string(),
            field,
            value: value.to_string(),
            max,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn desired(children: Vec<Value>) -> Desired {
        Desired {
            children,
            status: None,
            requeue_after: None,
            events: Vec::new(),
        }
    }

    fn parent() -> Value {
        json!({"metadata": {"name": "p", "namespace": "shop"}})
    }

    fn service(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}})
    }

    #[test]
    fn namespace_defaults_to_the_parents() {
        let mut other = service("b");
        other["metadata"]["namespace"] = json!("elsewhere");
        let valid = validate(
            desired(vec![service("a"), other]),
            &parent(),
            &Rules::default(),
        )
        .unwrap();
        assert_eq!(valid.children[0]["metadata"]["namespace"], "shop");
        assert_eq!(valid.children[1]["metadata"]["namespace"], "elsewhere");
    }

    #[test]
    fn missing_fields_are_named() {
        for (field, path) in [
            ("apiVersion", "/apiVersion"),
            ("kind", "/kind"),
            ("metadata.name", "/metadata/name"),
        ] {
            let mut child = service("a");
            *child.pointer_mut(path).unwrap() = json!("");
            let error = validate(
                desired(vec![service("ok"), child]),
                &parent(),
                &Rules::default(),
            )
            .unwrap_err();
            assert_eq!(error, ValidationError::MissingField { index: 2, field });
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["Web", "web_1", "-web", "web-", &"a".repeat(254)] {
            let error =
                validate(desired(vec![service(bad)]), &parent(), &Rules::default()).unwrap_err();
            assert!(
                matches!(
                    error,
                    ValidationError::InvalidName {
                        field: "metadata.name",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn duplicates_are_refused_even_across_versions() {
        let mut v2 = service("a");
        v2["apiVersion"] = json!("v2");
        let error = validate(
            desired(vec![service("a"), v2]),
            &parent(),
            &Rules::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #2 (v2/Service `a`) duplicates child #1"
        );
    }

    #[test]
    fn kinds_outside_the_allowlist_are_refused() {
        let rules = Rules {
            allowed_kinds: Some(vec![TypeRef::parse("apps/v1/Deployment").unwrap()]),
            ..Rules::default()
        };
        let error = validate(desired(vec![service("a")]), &parent(), &rules).unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #1 (v1/Service `a`): kind `v1/Service` is not allowed; allowed kinds: apps/v1/Deployment"
        );
    }

    fn in_namespace(mut child: Value, namespace: &str) -> Value {
        child["metadata"]["namespace"] = json!(namespace);
        child
    }

    fn namespace_object(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    }

    fn rules(namespaces: NamespaceRule) -> Rules {
        Rules {
            namespaces,
            cluster_scoped: vec![TypeRef::parse("v1/Namespace").unwrap()],
            ..Rules::default()
        }
    }

    #[test]
    fn the_parents_namespace_only_refuses_any_other() {
        let rules = rules(NamespaceRule::Parent);
        let valid = validate(desired(vec![service("a")]), &parent(), &rules).unwrap();
        assert_eq!(valid.children[0]["metadata"]["namespace"], "shop");
        let error = validate(
            desired(vec![service("a"), in_namespace(service("b"), "billing")]),
            &parent(),
            &rules,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #2 (v1/Service `b`): namespace `billing` is not allowed; allowed namespaces: `shop` (the parent's); widen `policy.allowedNamespaces` or write the child elsewhere"
        );
    }

    #[test]
    fn listed_namespaces_widen_the_parents() {
        let rules = rules(NamespaceRule::Listed(vec!["billing".into(), "ops".into()]));
        let children = vec![
            service("a"),
            in_namespace(service("b"), "billing"),
            in_namespace(service("c"), "ops"),
        ];
        assert!(validate(desired(children), &parent(), &rules).is_ok());
        let error = validate(
            desired(vec![in_namespace(service("d"), "kube-system")]),
            &parent(),
            &rules,
        )
        .unwrap_err();
        assert_eq!(
            error,
            ValidationError::NamespaceNotAllowed {
                index: 1,
                object: "v1/Service `d`".into(),
                namespace: "kube-system".into(),
                allowed: "`shop` (the parent's), `billing`, `ops`".into(),
            }
        );
    }

    #[test]
    fn a_cluster_scoped_parent_leaves_nothing_to_default_to() {
        let cluster_parent = json!({"metadata": {"name": "tenant-a"}});
        let error = validate(
            desired(vec![service("a")]),
            &cluster_parent,
            &rules(NamespaceRule::Parent),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #1 (v1/Service `a`): `metadata.namespace` is missing and the parent is cluster-scoped, so there is none to default to; set it (allowed namespaces: none (the parent is cluster-scoped))"
        );
        let listed = rules(NamespaceRule::Listed(vec!["ops".into()]));
        assert!(
            validate(
                desired(vec![in_namespace(service("a"), "ops")]),
                &cluster_parent,
                &listed
            )
            .is_ok()
        );
        let error = validate(
            desired(vec![in_namespace(service("a"), "shop")]),
            &cluster_parent,
            &listed,
        )
        .unwrap_err();
        assert!(
            matches!(&error, ValidationError::NamespaceNotAllowed { allowed, .. } if allowed == "`ops`"),
            "{error}"
        );
        // Unrestricted, as offline: the child stays without a namespace.
        let valid = validate(
            desired(vec![service("a")]),
            &cluster_parent,
            &Rules::default(),
        )
        .unwrap();
        assert!(valid.children[0]["metadata"].get("namespace").is_none());
    }

    #[test]
    fn cluster_scoped_children_need_the_policy_to_allow_them() {
        let error = validate(
            desired(vec![service("a"), namespace_object("tenant-a")]),
            &parent(),
            &rules(NamespaceRule::Parent),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #2 (v1/Namespace `tenant-a`): `v1/Namespace` is cluster-scoped and cluster-scoped children are not allowed; set `policy.allowClusterScoped: true` to allow them"
        );
    }

    #[test]
    fn allowed_cluster_scoped_children_get_no_namespace_and_may_carry_none() {
        let allowed = Rules {
            allow_cluster_scoped: true,
            ..rules(NamespaceRule::Parent)
        };
        let valid = validate(
            desired(vec![namespace_object("tenant-a")]),
            &parent(),
            &allowed,
        )
        .unwrap();
        assert!(valid.children[0]["metadata"].get("namespace").is_none());

        let error = validate(
            desired(vec![in_namespace(namespace_object("tenant-a"), "shop")]),
            &parent(),
            &allowed,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "child #1 (v1/Namespace `tenant-a`): `v1/Namespace` is cluster-scoped but has `metadata.namespace: shop`; remove the namespace"
        );
    }

    #[test]
    fn scope_is_matched_by_group_and_kind_in_any_version() {
        let mut rules = rules(NamespaceRule::Parent);
        rules.cluster_scoped =
            vec![TypeRef::parse("rbac.authorization.k8s.io/v1/ClusterRole").unwrap()];
        let role = |version: &str, name: &str| json!({"apiVersion": format!("rbac.authorization.k8s.io/{version}"), "kind": "ClusterRole", "metadata": {"name": name}});
        let error = validate(desired(vec![role("v2", "r")]), &parent(), &rules).unwrap_err();
        assert!(
            matches!(error, ValidationError::ClusterScopedNotAllowed { .. }),
            "{error}"
        );
        rules.allow_cluster_scoped = true;
        let error = validate(
            desired(vec![role("v1", "r"), role("v2", "r")]),
            &parent(),
            &rules,
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                ValidationError::Duplicate {
                    index: 2,
                    first: 1,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn namespaces_are_checked_like_kubernetes() {
        assert!(is_valid_namespace("team-a"));
        assert!(!is_valid_namespace("Team"));
        assert!(!is_valid_namespace(&"a".repeat(64)));
        assert!(!is_valid_namespace("*"));
    }

    #[test]
    fn type_refs_parse_with_and_without_group() {
        assert_eq!(
            TypeRef::parse("apps/v1/Deployment").unwrap().group(),
            "apps"
        );
        assert_eq!(TypeRef::parse("v1/Service").unwrap().group(), "");
        assert!(TypeRef::parse("Service").is_err());
        assert!(TypeRef::parse("v1/").is_err());
    }
}
