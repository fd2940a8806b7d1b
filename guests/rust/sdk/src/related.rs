//! Requests for more related objects, answered in a later call of the same pass.

use crate::wit;

/// A request to read more objects of a related kind.
///
/// The host answers it by calling `reconcile` again in the same pass with the
/// objects it selects added to [`Request::related`](crate::Request::related).
/// Only kinds the Reconciler declares in `spec.related` may be requested, and
/// a request can only narrow what that declaration selects. Return the same
/// requests on every call that needs the objects: requests that change from
/// call to call never settle.
///
/// ```ignore
/// let request = RelatedRequest::new("v1", "ConfigMap")
///     .namespace("shared")
///     .selector("app=web,tier in (front,back)");
/// Ok(Response::new().request_related(request))
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedRequest {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: Option<String>,
    selector: Option<String>,
}

impl RelatedRequest {
    /// Objects of `api_version` (`group/version`, e.g. `v1` or `apps/v1`) and
    /// `kind` in the parent's namespace (every namespace when the parent is
    /// cluster-scoped).
    pub fn new(api_version: &str, kind: &str) -> Self {
        Self {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: None,
            name: None,
            selector: None,
        }
    }

    /// Only objects in `namespace` (`*`: every namespace). Ignored for
    /// cluster-scoped kinds.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Objects in every namespace, as `namespace("*")`.
    pub fn all_namespaces(self) -> Self {
        self.namespace("*")
    }

    /// Only the object named `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Only objects whose labels match `selector`, in the syntax of
    /// `kubectl -l` (e.g. `app=web,tier in (front,back),!canary`).
    pub fn selector(mut self, selector: &str) -> Self {
        self.selector = Some(selector.to_string());
        self
    }

    pub(crate) fn into_wit(self) -> wit::RelatedRequest {
        wit::RelatedRequest {
            api_version: self.api_version,
            kind: self.kind,
            namespace: self.namespace,
            name: self.name,
            selector: self.selector,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_request_narrows_nothing() {
        let raw = RelatedRequest::new("apps/v1", "Deployment").into_wit();
        assert_eq!(
            (raw.api_version.as_str(), raw.kind.as_str()),
            ("apps/v1", "Deployment")
        );
        assert_eq!((raw.namespace, raw.name, raw.selector), (None, None, None));
    }

    #[test]
    fn every_narrowing_reaches_the_host() {
        let raw = RelatedRequest::new("v1", "ConfigMap")
            .namespace("shared")
            .name("settings")
            .selector("app=web,tier in (front,back)")
            .into_wit();
        assert_eq!(raw.namespace.as_deref(), Some("shared"));
        assert_eq!(raw.name.as_deref(), Some("settings"));
        assert_eq!(
            raw.selector.as_deref(),
            Some("app=web,tier in (front,back)")
        );
        let everywhere = RelatedRequest::new("v1", "Secret")
            .all_namespaces()
            .into_wit();
        assert_eq!(everywhere.namespace.as_deref(), Some("*"));
    }
}
