//! Checks the shape of every desired object before anything could be applied.
//! All or nothing: one bad object rejects the whole response.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::crd::{check_key, check_value};
use crate::related::RelatedQuery;
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
    /// The kinds declared in `spec.related`: the only kinds a guest may
    /// request to read or patch. `None` allows any (offline, without a
    /// manifest).
    pub readable: Option<Vec<TypeRef>>,
}

impl Rules {
    /// Whether `kind` is known to be cluster-scoped (in any version).
    pub fn is_cluster_scoped(&self, kind: &TypeRef) -> bool {
        self.cluster_scoped.iter().any(|c| c.same_resource(kind))
    }
}

/// The first problem found in a response; nothing of it may be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// A required field is missing or not a non-empty string.
    #[error("{at}: `{field}` is missing or not a non-empty string")]
    MissingField {
        /// Where in the response.
        at: Position,
        /// The field, e.g. `metadata.name`.
        field: &'static str,
    },
    /// A name or namespace Kubernetes would refuse.
    #[error(
        "{at} ({object}): {field} `{value}` is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most {max} characters)"
    )]
    InvalidName {
        /// Where in the response.
        at: Position,
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
    #[error("{at} ({object}) duplicates {first}")]
    Duplicate {
        /// Where the second occurrence is.
        at: Position,
        /// Where the first is.
        first: Position,
        /// The object.
        object: String,
    },
    /// A kind outside the allowlist.
    #[error("{at} ({object}): kind `{kind}` is not allowed; allowed kinds: {allowed}")]
    KindNotAllowed {
        /// Where in the response.
        at: Position,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
        /// The allowlist, comma-separated.
        allowed: String,
    },
    /// A namespaced child outside the allowed namespaces.
    #[error(
        "{at} ({object}): namespace `{namespace}` is not allowed; allowed namespaces: {allowed}; widen `policy.allowedNamespaces` or write the child elsewhere"
    )]
    NamespaceNotAllowed {
        /// Where in the response.
        at: Position,
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
        "{at} ({object}): `metadata.namespace` is missing and the parent is cluster-scoped, so there is none to default to; set it (allowed namespaces: {allowed})"
    )]
    MissingNamespace {
        /// Where in the response.
        at: Position,
        /// The object.
        object: String,
        /// The allowed namespaces, in words.
        allowed: String,
    },
    /// A child of a cluster-scoped kind when the policy allows none.
    #[error(
        "{at} ({object}): `{kind}` is cluster-scoped and cluster-scoped children are not allowed; set `policy.allowClusterScoped: true` to allow them"
    )]
    ClusterScopedNotAllowed {
        /// Where in the response.
        at: Position,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
    },
    /// A patch, or a related request, of a kind not declared in `spec.related`.
    #[error(
        "{at} ({object}): kind `{kind}` is not declared in `spec.related`; a reconciler may only patch kinds it declares there (declared: {declared})"
    )]
    KindNotDeclared {
        /// Where in the response.
        at: Position,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
        /// The declared kinds, comma-separated.
        declared: String,
    },
    /// A patch that sets owner references.
    #[error(
        "{at}: a patch may not set `metadata.ownerReferences`; return the object as a child to own it"
    )]
    PatchSetsOwner {
        /// Where in the response.
        at: Position,
    },
    /// A patch of the parent itself.
    #[error(
        "{at} is the parent itself; set the parent's labels and annotations with `parent-labels` and `parent-annotations`"
    )]
    PatchOfParent {
        /// Where in the response.
        at: Position,
    },
    /// A label or annotation key under `sous.dev/`.
    #[error("{what} `{key}`: keys under `sous.dev/` are the host's")]
    ReservedKey {
        /// `parent label`, `patch #1`...
        what: String,
        /// The key.
        key: String,
    },
    /// A parent label or annotation Kubernetes would refuse.
    #[error("{what}: {problem}")]
    InvalidEntry {
        /// `parent label` or `parent annotation`.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A related request that cannot be served.
    #[error("related request #{index} (`{kind}`): {problem}")]
    RelatedRequest {
        /// 1-based position.
        index: usize,
        /// The requested kind.
        kind: TypeRef,
        /// What is wrong.
        problem: String,
    },
    /// A child of a cluster-scoped kind that names a namespace.
    #[error(
        "{at} ({object}): `{kind}` is cluster-scoped but has `metadata.namespace: {namespace}`; remove the namespace"
    )]
    NamespaceOnClusterScoped {
        /// Where in the response.
        at: Position,
        /// The object.
        object: String,
        /// Its type.
        kind: TypeRef,
        /// The namespace it carries.
        namespace: String,
    },
}

/// Where an object is in a response: `child #2`, `patch #1` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Which list.
    pub list: ObjectList,
    /// 1-based position in that list.
    pub index: usize,
}

/// The lists of objects in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectList {
    /// `children`.
    Child,
    /// `patches`.
    Patch,
}

impl Position {
    /// The `index`th (1-based) desired child.
    pub fn child(index: usize) -> Self {
        Self {
            list: ObjectList::Child,
            index,
        }
    }

    /// The `index`th (1-based) patch.
    pub fn patch(index: usize) -> Self {
        Self {
            list: ObjectList::Patch,
            index,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = match self.list {
            ObjectList::Child => "child",
            ObjectList::Patch => "patch",
        };
        write!(f, "{list} #{}", self.index)
    }
}

/// Label and annotation keys reserved to the host.
const RESERVED_PREFIX: &str = "sous.dev/";

/// Validates every child and patch of `desired` against `rules`, defaults a
/// namespaced object's namespace to the parent's (a cluster-scoped one gets
/// none), and checks the parent's labels and annotations and the related
/// requests. Returns the answer ready to apply, or the first problem.
pub fn validate(
    mut desired: Desired,
    parent: &Value,
    rules: &Rules,
) -> Result<Desired, ValidationError> {
    let parent_namespace = parent["metadata"]["namespace"].as_str();
    let mut seen = HashMap::new();
    for (position, child) in desired.children.iter_mut().enumerate() {
        let at = Position::child(position + 1);
        check_object(
            child,
            at,
            parent_namespace,
            rules,
            rules.allowed_kinds.as_ref(),
            &mut seen,
        )?;
    }
    let parent_identity = identity_of(parent);
    for (position, patch) in desired.patches.iter_mut().enumerate() {
        let at = Position::patch(position + 1);
        check_patch(patch, at)?;
        let identity = check_object(
            patch,
            at,
            parent_namespace,
            rules,
            rules.readable.as_ref(),
            &mut seen,
        )?;
        if Some(&identity) == parent_identity.as_ref() {
            return Err(ValidationError::PatchOfParent { at });
        }
    }
    for (what, entries) in [
        ("parent label", &desired.parent_labels),
        ("parent annotation", &desired.parent_annotations),
    ] {
        for (key, value) in entries.iter().flatten() {
            check_entry(what, key, value)?;
        }
    }
    for (position, request) in desired.related_requests.iter().enumerate() {
        check_related_request(request, rules).map_err(|problem| {
            ValidationError::RelatedRequest {
                index: position + 1,
                kind: request.type_ref(),
                problem,
            }
        })?;
    }
    Ok(desired)
}

/// The identity of an object for duplicates: group, kind, namespace, name.
type Identity = (String, String, Option<String>, String);

fn identity_of(object: &Value) -> Option<Identity> {
    let text = |value: &Value| value.as_str().map(str::to_string);
    let kind = TypeRef {
        api_version: text(&object["apiVersion"])?,
        kind: text(&object["kind"])?,
    };
    Some((
        kind.group().to_string(),
        kind.kind,
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"])?,
    ))
}

/// One desired object's shape, kind (against `allowed`), name and
/// namespace; returns its identity, refusing one seen before.
fn check_object(
    object: &mut Value,
    at: Position,
    parent_namespace: Option<&str>,
    rules: &Rules,
    allowed: Option<&Vec<TypeRef>>,
    seen: &mut HashMap<Identity, Position>,
) -> Result<Identity, ValidationError> {
    let kind = TypeRef {
        api_version: required(object, &["apiVersion"], at, "apiVersion")?,
        kind: required(object, &["kind"], at, "kind")?,
    };
    let name = required(object, &["metadata", "name"], at, "metadata.name")?;
    let described = format!("{kind} `{name}`");
    check_name(&name, NAME_MAX, at, &described, "metadata.name")?;
    if let Some(allowed) = allowed.filter(|allowed| !allowed.contains(&kind)) {
        let listed = allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(if at.list == ObjectList::Patch {
            ValidationError::KindNotDeclared {
                at,
                object: described,
                kind,
                declared: if listed.is_empty() {
                    "none".into()
                } else {
                    listed
                },
            }
        } else {
            ValidationError::KindNotAllowed {
                at,
                object: described,
                kind,
                allowed: listed,
            }
        });
    }
    let namespace = if rules.is_cluster_scoped(&kind) {
        check_cluster_scoped(object, rules, at, &described, &kind)?;
        None
    } else {
        let namespace = child_namespace(object, parent_namespace, at, &described)?;
        check_namespace(
            namespace.as_deref(),
            parent_namespace,
            rules,
            at,
            &described,
        )?;
        namespace
    };
    let identity = (kind.group().to_string(), kind.kind.clone(), namespace, name);
    if let Some(first) = seen.insert(identity.clone(), at) {
        return Err(ValidationError::Duplicate {
            at,
            first,
            object: described,
        });
    }
    Ok(identity)
}

/// What only a patch may not carry: owner references (a patch must not make
/// someone's object collectable) and the host's labels (they would make the
/// object look like a child, to be pruned).
fn check_patch(patch: &Value, at: Position) -> Result<(), ValidationError> {
    let metadata = &patch["metadata"];
    if metadata.get("ownerReferences").is_some() {
        return Err(ValidationError::PatchSetsOwner { at });
    }
    let reserved = [&metadata["labels"], &metadata["annotations"]]
        .into_iter()
        .filter_map(Value::as_object)
        .flat_map(|entries| entries.keys())
        .find(|key| is_reserved(key));
    match reserved {
        Some(key) => Err(ValidationError::ReservedKey {
            what: format!("{at}"),
            key: key.clone(),
        }),
        None => Ok(()),
    }
}

fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
        || key
            .split_once('/')
            .is_some_and(|(prefix, _)| prefix.ends_with(".sous.dev"))
}

/// A label or annotation for the parent: a valid key, not the host's, and a
/// valid value for a label.
fn check_entry(what: &'static str, key: &str, value: &str) -> Result<(), ValidationError> {
    if is_reserved(key) {
        return Err(ValidationError::ReservedKey {
            what: what.to_string(),
            key: key.to_string(),
        });
    }
    let checked = check_key(key).and_then(|()| {
        if what == "parent label" {
            check_value(value)
        } else {
            Ok(())
        }
    });
    checked.map_err(|problem| ValidationError::InvalidEntry { what, problem })
}

/// A related request names a declared kind and a selector that parses.
fn check_related_request(request: &RelatedQuery, rules: &Rules) -> Result<(), String> {
    if request.api_version.is_empty() || request.kind.is_empty() {
        return Err("`apiVersion` and `kind` are required".into());
    }
    if let Some(declared) = &rules.readable
        && !declared
            .iter()
            .any(|kind| kind.same_resource(&request.type_ref()))
    {
        let declared = declared
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "the kind is not declared in `spec.related`, so it may not be requested (declared: {})",
            if declared.is_empty() {
                "none"
            } else {
                &declared
            }
        ));
    }
    request
        .label_selector()
        .map(|_| ())
        .map_err(|problem| format!("the selector is not a label selector: {problem}"))
}

/// A cluster-scoped child: allowed at all, and without a namespace.
fn check_cluster_scoped(
    child: &Value,
    rules: &Rules,
    at: Position,
    object: &str,
    kind: &TypeRef,
) -> Result<(), ValidationError> {
    if !rules.allow_cluster_scoped {
        return Err(ValidationError::ClusterScopedNotAllowed {
            at,
            object: object.to_string(),
            kind: kind.clone(),
        });
    }
    match child["metadata"]["namespace"]
        .as_str()
        .filter(|namespace| !namespace.is_empty())
    {
        Some(namespace) => Err(ValidationError::NamespaceOnClusterScoped {
            at,
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
    at: Position,
    object: &str,
) -> Result<Option<String>, ValidationError> {
    match child["metadata"]["namespace"].as_str() {
        Some(namespace) => {
            check_name(namespace, NAMESPACE_MAX, at, object, "metadata.namespace")?;
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
    at: Position,
    object: &str,
) -> Result<(), ValidationError> {
    let allowed = || rules.namespaces.describe(parent_namespace);
    match namespace {
        // Unrestricted: a cluster-scoped parent's namespaced child may stay
        // without one (offline, where scopes are unknown).
        None if rules.namespaces == NamespaceRule::Any => Ok(()),
        None => Err(ValidationError::MissingNamespace {
            at,
            object: object.to_string(),
            allowed: allowed(),
        }),
        Some(namespace) if rules.namespaces.allows(namespace, parent_namespace) => Ok(()),
        Some(namespace) => Err(ValidationError::NamespaceNotAllowed {
            at,
            object: object.to_string(),
            namespace: namespace.to_string(),
            allowed: allowed(),
        }),
    }
}

fn required(
    child: &Value,
    path: &[&str],
    at: Position,
    field: &'static str,
) -> Result<String, ValidationError> {
    path.iter()
        .try_fold(child, |value, key| value.get(key))
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
        .ok_or(ValidationError::MissingField { at, field })
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
    at: Position,
    object: &str,
    field: &'static str,
) -> Result<(), ValidationError> {
    if is_valid_name(value, max) {
        Ok(())
    } else {
        Err(ValidationError::InvalidName {
            at,
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
            ..Desired::default()
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
            assert_eq!(
                error,
                ValidationError::MissingField {
                    at: Position::child(2),
                    field
                }
            );
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
                at: Position::child(1),
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
            error.to_string().starts_with(
                "child #2 (rbac.authorization.k8s.io/v2/ClusterRole `r`) duplicates child #1"
            ),
            "{error}"
        );
    }

    fn deployment_patch(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name},
               "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}})
    }

    fn declared(kinds: &[&str]) -> Rules {
        Rules {
            readable: Some(kinds.iter().map(|k| TypeRef::parse(k).unwrap()).collect()),
            ..rules(NamespaceRule::Parent)
        }
    }

    #[test]
    fn patches_are_checked_like_children_against_the_declared_related_kinds() {
        let rules = declared(&["apps/v1/Deployment"]);
        let answer = Desired {
            patches: vec![deployment_patch("web")],
            ..desired(vec![service("web")])
        };
        let valid = validate(answer, &parent(), &rules).unwrap();
        assert_eq!(valid.patches[0]["metadata"]["namespace"], "shop");

        let undeclared = Desired {
            patches: vec![service("other")],
            ..desired(Vec::new())
        };
        let error = validate(undeclared, &parent(), &rules).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "patch #1 (v1/Service `other`): kind `v1/Service` is not declared in `spec.related`"
            ),
            "{error}"
        );
        let elsewhere = Desired {
            patches: vec![in_namespace(deployment_patch("web"), "kube-system")],
            ..desired(Vec::new())
        };
        let error = validate(elsewhere, &parent(), &rules).unwrap_err();
        assert!(
            matches!(error, ValidationError::NamespaceNotAllowed { .. }),
            "{error}"
        );
        let twice = Desired {
            patches: vec![deployment_patch("web"), deployment_patch("web")],
            ..desired(Vec::new())
        };
        let error = validate(twice, &parent(), &rules).unwrap_err();
        assert!(error.to_string().contains("duplicates patch #1"), "{error}");
    }

    #[test]
    fn a_patch_may_not_own_label_as_a_child_or_touch_the_parent() {
        let rules = declared(&["apps/v1/Deployment", "example.sous.dev/v1/MyApp"]);
        let mut owned = deployment_patch("web");
        owned["metadata"]["ownerReferences"] = json!([{"kind": "MyApp", "name": "p"}]);
        let mut labelled = deployment_patch("web");
        labelled["metadata"]["labels"] = json!({"sous.dev/reconciler": "other"});
        let the_parent = json!({"apiVersion": "example.sous.dev/v1", "kind": "MyApp",
                                "metadata": {"name": "p", "namespace": "shop"}});
        for (patch, problem) in [
            (owned, "may not set `metadata.ownerReferences`"),
            (
                labelled,
                "patch #1 `sous.dev/reconciler`: keys under `sous.dev/` are the host's",
            ),
            (the_parent.clone(), "patch #1 is the parent itself"),
        ] {
            let answer = Desired {
                patches: vec![patch],
                ..desired(Vec::new())
            };
            let error = validate(answer, &the_parent, &rules).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        }
    }

    #[test]
    fn parent_labels_and_annotations_are_kubernetes_keys_not_the_hosts() {
        let entries = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let answer = |labels, annotations| Desired {
            parent_labels: labels,
            parent_annotations: annotations,
            ..desired(Vec::new())
        };
        let rules = rules(NamespaceRule::Parent);
        let good = answer(
            entries(&[("team", "a"), ("example.dev/tier", "")]),
            entries(&[("example.dev/note", "any text, even spaces")]),
        );
        assert!(validate(good, &parent(), &rules).is_ok());
        for (labels, annotations, problem) in [
            (
                entries(&[("sous.dev/parent-uid", "x")]),
                None,
                "parent label `sous.dev/parent-uid`: keys under `sous.dev/` are the host's",
            ),
            (
                None,
                entries(&[("x.sous.dev/y", "1")]),
                "parent annotation `x.sous.dev/y`",
            ),
            (
                entries(&[("team", "a b")]),
                None,
                "parent label: `a b` is not a label value",
            ),
            (
                None,
                entries(&[("-bad", "v")]),
                "parent annotation: `-bad` is not a label key",
            ),
        ] {
            let error = validate(answer(labels, annotations), &parent(), &rules).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        }
    }

    #[test]
    fn related_requests_need_a_declared_kind_and_a_selector_that_parses() {
        let request = |kind: &str, selector: Option<&str>| RelatedQuery {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: None,
            selector: selector.map(Into::into),
        };
        let answer = |request| Desired {
            related_requests: vec![request],
            ..desired(Vec::new())
        };
        let rules = declared(&["v1/ConfigMap"]);
        assert!(
            validate(
                answer(request("ConfigMap", Some("app=web"))),
                &parent(),
                &rules
            )
            .is_ok()
        );
        let error = validate(answer(request("Secret", None)), &parent(), &rules).unwrap_err();
        assert_eq!(
            error.to_string(),
            "related request #1 (`v1/Secret`): the kind is not declared in `spec.related`, so it may not be requested (declared: v1/ConfigMap)"
        );
        let error = validate(
            answer(request("ConfigMap", Some("app in web"))),
            &parent(),
            &rules,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the selector is not a label selector"),
            "{error}"
        );
        let error = validate(answer(request("", None)), &parent(), &rules).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`apiVersion` and `kind` are required"),
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
