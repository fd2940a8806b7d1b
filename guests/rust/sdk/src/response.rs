//! The answer of a reconciler: desired children, status, events, requeue, the
//! parent's labels and annotations, patches and related requests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::{Desired, RelatedRequest, wit};

/// A Kubernetes Event to record on the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    warning: bool,
    reason: String,
    message: String,
}

impl Event {
    /// An informational event.
    pub fn normal(reason: &str, message: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// A warning event.
    pub fn warning(reason: &str, message: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    fn into_wit(self) -> wit::Event {
        wit::Event {
            event_type: if self.warning {
                wit::EventType::Warning
            } else {
                wit::EventType::Normal
            },
            reason: self.reason,
            message: self.message,
        }
    }
}

/// The desired state of one parent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    children: Vec<Value>,
    status: Option<Value>,
    requeue_after: Option<Duration>,
    events: Vec<Event>,
    parent_labels: Option<BTreeMap<String, String>>,
    parent_annotations: Option<BTreeMap<String, String>>,
    patches: Vec<Value>,
    related_requests: Vec<RelatedRequest>,
}

impl Response {
    /// No children, no status change, no requeue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a desired child. Every child to keep must be added on every call:
    /// owned children missing from the response are deleted.
    pub fn child(mut self, child: impl Into<Value>) -> Self {
        self.children.push(child.into());
        self
    }

    /// Sets the parent's `.status` (the host adds its own conditions).
    pub fn status(mut self, status: Value) -> Self {
        self.status = Some(status);
        self
    }

    /// Asks to be called again after `delay` even if nothing changes.
    pub fn requeue_after(mut self, delay: Duration) -> Self {
        self.requeue_after = Some(delay);
        self
    }

    /// Records an event on the parent.
    pub fn event(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }

    /// Sets one label on the parent. The labels this reconciler sets are a
    /// complete set: a label it set before and no longer answers is removed
    /// (labels others set are never touched). Keys under `sous.dev/` are the
    /// host's and refused. Without any parent label in the response, the
    /// parent's labels are left as they are.
    pub fn parent_label(self, key: &str, value: &str) -> Self {
        self.parent_labels([(key, value)])
    }

    /// Sets several labels on the parent, as [`Response::parent_label`] does.
    /// `parent_labels([])` answers an empty set: it removes every label this
    /// reconciler set before.
    pub fn parent_labels<'a>(
        mut self,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        insert_all(&mut self.parent_labels, labels);
        self
    }

    /// Sets one annotation on the parent, as [`Response::parent_label`] does
    /// for labels.
    pub fn parent_annotation(self, key: &str, value: &str) -> Self {
        self.parent_annotations([(key, value)])
    }

    /// Sets several annotations on the parent; `parent_annotations([])`
    /// removes every annotation this reconciler set before.
    pub fn parent_annotations<'a>(
        mut self,
        annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        insert_all(&mut self.parent_annotations, annotations);
        self
    }

    /// Contributes fields to an object this reconciler does not own: a
    /// partial object (`apiVersion`, `kind`, `metadata.name`, the fields to
    /// set, e.g. built with [`object`](crate::object)) that the host
    /// server-side applies with the reconciler's field manager. A patch never
    /// creates or deletes an object and must carry no owner references; when
    /// it is no longer answered, the fields keep their last values.
    pub fn patch(mut self, patch: impl Into<Value>) -> Self {
        self.patches.push(patch.into());
        self
    }

    /// Asks to read more related objects: the host calls `reconcile` again
    /// in the same pass with them added to
    /// [`Request::related`](crate::Request::related). Answer the same
    /// requests on every call that needs the objects.
    pub fn request_related(mut self, request: RelatedRequest) -> Self {
        self.related_requests.push(request);
        self
    }

    pub(crate) fn into_wit(self) -> wit::Response {
        wit::Response {
            children: self.children.iter().map(json_text).collect(),
            status: self.status.as_ref().map(json_text),
            requeue_after_ms: self.requeue_after.map(duration_ms),
            events: self.events.into_iter().map(Event::into_wit).collect(),
            parent_labels: self.parent_labels.map(|map| map.into_iter().collect()),
            parent_annotations: self.parent_annotations.map(|map| map.into_iter().collect()),
            patches: self.patches.iter().map(json_text).collect(),
            related_requests: self
                .related_requests
                .into_iter()
                .map(RelatedRequest::into_wit)
                .collect(),
        }
    }
}

impl From<Desired> for Response {
    /// A response that keeps what the earlier steps of a pipeline proposed:
    /// their children and status, to change or add to.
    fn from(desired: Desired) -> Self {
        Self {
            children: desired.children,
            status: desired.status,
            ..Self::default()
        }
    }
}

/// Makes `set` a complete set (present even when `entries` is empty) and adds
/// `entries` to it; a later value for a key replaces an earlier one.
fn insert_all<'a>(
    set: &mut Option<BTreeMap<String, String>>,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let set = set.get_or_insert_with(BTreeMap::new);
    for (key, value) in entries {
        set.insert(key.to_string(), value.to_string());
    }
}

/// The answer to `finalize`.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalizeResponse {
    done: bool,
    requeue_after: Option<Duration>,
    events: Vec<Event>,
}

impl FinalizeResponse {
    /// Cleanup is complete: the parent may go.
    pub fn done() -> Self {
        Self {
            done: true,
            requeue_after: None,
            events: Vec::new(),
        }
    }

    /// Cleanup is still under way: call again after `delay`.
    pub fn not_yet(delay: Duration) -> Self {
        Self {
            done: false,
            requeue_after: Some(delay),
            events: Vec::new(),
        }
    }

    /// Records an event on the parent.
    pub fn event(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }

    pub(crate) fn into_wit(self) -> wit::FinalizeResponse {
        wit::FinalizeResponse {
            done: self.done,
            requeue_after_ms: self.requeue_after.map(duration_ms),
            events: self.events.into_iter().map(Event::into_wit).collect(),
        }
    }
}

/// JSON text of `value`. `serde_json::to_string` writes through one buffer;
/// `Value`'s `Display` goes through `fmt` in small pieces and costs about a
/// third more guest time per response.
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value always serializes")
}

fn duration_ms(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_response_becomes_json_text_for_the_host() {
        let raw = Response::new()
            .child(json!({"kind": "Service"}))
            .status(json!({"phase": "Ready"}))
            .requeue_after(Duration::from_secs(30))
            .event(Event::warning("Slow", "took long"))
            .into_wit();
        assert_eq!(raw.children, [r#"{"kind":"Service"}"#]);
        assert_eq!(raw.status.as_deref(), Some(r#"{"phase":"Ready"}"#));
        assert_eq!(raw.requeue_after_ms, Some(30_000));
        assert!(matches!(raw.events[0].event_type, wit::EventType::Warning));
    }

    #[test]
    fn a_plain_response_leaves_the_parent_and_others_alone() {
        let raw = Response::new().into_wit();
        assert_eq!((raw.parent_labels, raw.parent_annotations), (None, None));
        assert!(raw.patches.is_empty());
        assert!(raw.related_requests.is_empty());
    }

    #[test]
    fn parent_labels_and_annotations_are_complete_sets_sorted_by_key() {
        let raw = Response::new()
            .parent_label("teams.example.dev/decorated", "true")
            .parent_labels([("b", "1"), ("a", "2"), ("b", "3")])
            .parent_annotation("note", "hi")
            .into_wit();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            raw.parent_labels,
            Some(vec![
                pair("a", "2"),
                pair("b", "3"),
                pair("teams.example.dev/decorated", "true")
            ])
        );
        assert_eq!(raw.parent_annotations, Some(vec![pair("note", "hi")]));
    }

    #[test]
    fn an_empty_set_of_parent_labels_is_still_answered() {
        let raw = Response::new()
            .parent_labels([])
            .parent_annotations([])
            .into_wit();
        assert_eq!(raw.parent_labels, Some(vec![]));
        assert_eq!(raw.parent_annotations, Some(vec![]));
    }

    #[test]
    fn patches_and_related_requests_reach_the_host_in_order() {
        let raw = Response::new()
            .patch(crate::object("apps/v1", "Deployment", "web").spec(json!({"replicas": 2})))
            .patch(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}))
            .request_related(RelatedRequest::new("v1", "ConfigMap").name("settings"))
            .request_related(RelatedRequest::new("v1", "Secret").selector("app=web"))
            .into_wit();
        assert_eq!(
            raw.patches,
            [
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2}}"#,
                r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}}"#,
            ]
        );
        assert_eq!(raw.related_requests.len(), 2);
        assert_eq!(raw.related_requests[0].name.as_deref(), Some("settings"));
        assert_eq!(raw.related_requests[1].kind, "Secret");
        assert_eq!(raw.related_requests[1].selector.as_deref(), Some("app=web"));
    }

    #[test]
    fn a_response_can_start_from_the_proposed_desired_state() {
        let desired = Desired {
            children: vec![json!({"kind": "Service"})],
            status: Some(json!({"phase": "Ready"})),
        };
        let raw = Response::from(desired)
            .child(json!({"kind": "ConfigMap"}))
            .into_wit();
        assert_eq!(
            raw.children,
            [r#"{"kind":"Service"}"#, r#"{"kind":"ConfigMap"}"#]
        );
        assert_eq!(raw.status.as_deref(), Some(r#"{"phase":"Ready"}"#));
    }

    #[test]
    fn finalize_answers_done_or_not_yet() {
        assert!(FinalizeResponse::done().into_wit().done);
        let later = FinalizeResponse::not_yet(Duration::from_millis(1500)).into_wit();
        assert_eq!((later.done, later.requeue_after_ms), (false, Some(1500)));
    }
}
