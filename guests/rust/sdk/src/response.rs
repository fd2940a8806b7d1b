//! The answer of a reconciler: desired children, status, events, requeue.

use std::time::Duration;

use serde_json::Value;

use crate::wit;

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

    pub(crate) fn into_wit(self) -> wit::Response {
        wit::Response {
            children: self.children.iter().map(json_text).collect(),
            status: self.status.as_ref().map(json_text),
            requeue_after_ms: self.requeue_after.map(duration_ms),
            events: self.events.into_iter().map(Event::into_wit).collect(),
        }
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
    fn finalize_answers_done_or_not_yet() {
        assert!(FinalizeResponse::done().into_wit().done);
        let later = FinalizeResponse::not_yet(Duration::from_millis(1500)).into_wit();
        assert_eq!((later.done, later.requeue_after_ms), (false, Some(1500)));
    }
}
