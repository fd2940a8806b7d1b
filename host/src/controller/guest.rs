//! Stage "call guest": guest calls are CPU work, so they run on the blocking
//! pool, at most a fixed number at once across the whole host.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::policy::Policy;
use crate::render::{self, Observed, RelatedObjects, RenderError, Rendered};
use crate::runtime::{CallError, Finalized, LoadedModule};
use crate::telemetry::Metrics;

/// What a guest call needs besides its input.
#[derive(Clone)]
pub struct GuestCaller {
    /// The reconciler's name, as the guest sees it.
    pub name: Arc<str>,
    /// The reconciler's label in metrics (unique across namespaces).
    pub label: Arc<str>,
    /// Limits and rules.
    pub policy: Arc<Policy>,
    /// Slots shared by every reconciler of the host.
    pub slots: Arc<Semaphore>,
    /// Where call durations go.
    pub metrics: Arc<Metrics>,
}

impl GuestCaller {
    /// Calls `reconcile` and validates the answer against the policy.
    pub async fn reconcile(
        &self,
        module: Arc<LoadedModule>,
        observed: Observed,
        related: impl RelatedObjects + Send + 'static,
    ) -> Result<Rendered, RenderError> {
        let (reconciler, policy) = (self.name.clone(), self.policy.clone());
        self.run(move || {
            render::render(
                &module,
                &reconciler,
                &observed,
                &policy.limits,
                &policy.rules,
                &related,
            )
        })
        .await
    }

    /// Calls `finalize`.
    pub async fn finalize(
        &self,
        module: Arc<LoadedModule>,
        observed: Observed,
    ) -> Result<Finalized, CallError> {
        let (reconciler, policy) = (self.name.clone(), self.policy.clone());
        self.run(move || render::finalize(&module, &reconciler, &observed, &policy.limits))
            .await
    }

    async fn run<T: Send + 'static>(&self, call: impl FnOnce() -> T + Send + 'static) -> T {
        let waiting = self.metrics.queue_depth(&self.label);
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the guest slots are never closed");
        drop(waiting);
        let started = Instant::now();
        let result = match tokio::task::spawn_blocking(call).await {
            Ok(result) => result,
            // The runtime is shutting down: this pass is being dropped anyway.
            Err(error) if error.is_cancelled() => return std::future::pending().await,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        self.metrics
            .guest_call_finished(&self.label, started.elapsed());
        result
    }
}
