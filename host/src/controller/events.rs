//! Kubernetes Events on parents: the guest's own events and the host's
//! reports of failed passes. Publishing is best effort: a failure is logged
//! and never fails the pass.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::runtime::GuestEvent;

/// Longest reason the Events API accepts.
const MAX_REASON: usize = 128;
/// Longest note the Events API accepts (bytes).
const MAX_NOTE: usize = 1024;

/// Records events about parents for one reconciler.
#[derive(Clone)]
pub struct ParentEvents {
    recorder: Recorder,
}

impl ParentEvents {
    /// Events reported as `sous`, instance `identity`.
    pub fn new(client: kube::Client, identity: &str) -> Self {
        let reporter = Reporter {
            controller: "sous".into(),
            instance: Some(identity.to_string()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes the events the guest asked for.
    pub async fn guest(&self, parent: &ObjectReference, events: &[GuestEvent]) {
        for event in events {
            let warning = event.event_type.eq_ignore_ascii_case("warning");
            self.publish(parent, warning, "Reconcile", &event.reason, &event.message)
                .await;
        }
    }

    /// Publishes a warning about a failed pass.
    pub async fn failure(&self, parent: &ObjectReference, reason: &str, message: &str) {
        self.publish(parent, true, "Reconcile", reason, message)
            .await;
    }

    /// Publishes a warning about something the host did.
    pub async fn warning(
        &self,
        parent: &ObjectReference,
        action: &str,
        reason: &str,
        message: &str,
    ) {
        self.publish(parent, true, action, reason, message).await;
    }

    /// Publishes a normal event about something the host did.
    pub async fn normal(
        &self,
        parent: &ObjectReference,
        action: &str,
        reason: &str,
        message: &str,
    ) {
        self.publish(parent, false, action, reason, message).await;
    }

    async fn publish(
        &self,
        parent: &ObjectReference,
        warning: bool,
        action: &str,
        reason: &str,
        message: &str,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: truncate(reason, MAX_REASON),
            note: Some(truncate(message, MAX_NOTE)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, parent).await {
            tracing::warn!(parent = ?parent.name, namespace = ?parent.namespace, %error, reason, "could not record an event");
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(700), MAX_NOTE);
        assert!(cut.len() <= MAX_NOTE);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
