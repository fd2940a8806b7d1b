//! Which world a component implements, detected once at load: the current
//! `sous:reconciler@0.2.0` or the frozen 0.1.0. Calls to a 0.1.0 component
//! are translated both ways, so that the rest of the host only ever sees the
//! current types.

use std::fmt;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::current::{ReconcilerPre as CurrentPre, sous::reconciler::types as wit};
use super::bindings::v0_1::{ReconcilerPre as LegacyPre, sous::reconciler::types as legacy};
use super::error::LoadError;
use super::sandbox::GuestState;

/// A version of the `sous:reconciler` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldVersion {
    /// `sous:reconciler@0.2.0`.
    V0_2,
    /// `sous:reconciler@0.1.0`.
    V0_1,
}

impl fmt::Display for WorldVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V0_2 => "sous:reconciler@0.2.0",
            Self::V0_1 => "sous:reconciler@0.1.0",
        })
    }
}

/// A linked component and the world it implements.
pub(super) enum WorldPre {
    Current(CurrentPre<GuestState>),
    Legacy(LegacyPre<GuestState>),
}

/// What an export returns: the guest's answer or its error, or a trap.
type Answer<T> = wasmtime::Result<Result<T, wit::Error>>;

impl WorldPre {
    /// Finds the world `instance_pre` implements, the current one first.
    pub(super) fn detect(instance_pre: InstancePre<GuestState>) -> Result<Self, LoadError> {
        let current = match CurrentPre::new(instance_pre.clone()) {
            Ok(pre) => return Ok(Self::Current(pre)),
            Err(error) => error,
        };
        LegacyPre::new(instance_pre)
            .map(Self::Legacy)
            .map_err(|_| LoadError::WrongWorld(format!("{current:#}")))
    }

    /// The contract version.
    pub(super) fn version(&self) -> WorldVersion {
        match self {
            Self::Current(_) => WorldVersion::V0_2,
            Self::Legacy(_) => WorldVersion::V0_1,
        }
    }

    pub(super) fn engine(&self) -> &wasmtime::Engine {
        match self {
            Self::Current(pre) => pre.engine(),
            Self::Legacy(pre) => pre.engine(),
        }
    }

    /// Instantiates and calls `reconcile`.
    pub(super) fn reconcile(
        &self,
        store: &mut Store<GuestState>,
        request: &wit::Request,
    ) -> Answer<wit::Response> {
        match self {
            Self::Current(pre) => pre.instantiate(&mut *store)?.call_reconcile(store, request),
            Self::Legacy(pre) => Ok(pre
                .instantiate(&mut *store)?
                .call_reconcile(store, &downgrade(request))?
                .map(upgrade_response)
                .map_err(upgrade_error)),
        }
    }

    /// Instantiates and calls `finalize`.
    pub(super) fn finalize(
        &self,
        store: &mut Store<GuestState>,
        request: &wit::Request,
    ) -> Answer<wit::FinalizeResponse> {
        match self {
            Self::Current(pre) => pre.instantiate(&mut *store)?.call_finalize(store, request),
            Self::Legacy(pre) => Ok(pre
                .instantiate(&mut *store)?
                .call_finalize(store, &downgrade(request))?
                .map(|answer| wit::FinalizeResponse {
                    done: answer.done,
                    requeue_after_ms: answer.requeue_after_ms,
                    events: upgrade_events(answer.events),
                })
                .map_err(upgrade_error)),
        }
    }
}

/// The request as 0.1.0 knows it: without `desired`.
fn downgrade(request: &wit::Request) -> legacy::Request {
    legacy::Request {
        reconciler: request.reconciler.clone(),
        parent: request.parent.clone(),
        children: request.children.clone(),
        related: request.related.clone(),
        config: request.config.clone(),
    }
}

/// A 0.1.0 answer, with none of what 0.2.0 added.
fn upgrade_response(response: legacy::Response) -> wit::Response {
    wit::Response {
        children: response.children,
        status: response.status,
        requeue_after_ms: response.requeue_after_ms,
        events: upgrade_events(response.events),
        parent_labels: None,
        parent_annotations: None,
        patches: Vec::new(),
        related_requests: Vec::new(),
    }
}

fn upgrade_events(events: Vec<legacy::Event>) -> Vec<wit::Event> {
    events
        .into_iter()
        .map(|event| wit::Event {
            event_type: match event.event_type {
                legacy::EventType::Normal => wit::EventType::Normal,
                legacy::EventType::Warning => wit::EventType::Warning,
            },
            reason: event.reason,
            message: event.message,
        })
        .collect()
}

fn upgrade_error(error: legacy::Error) -> wit::Error {
    match error {
        legacy::Error::Invalid(message) => wit::Error::Invalid(message),
        legacy::Error::Transient(message) => wit::Error::Transient(message),
    }
}
