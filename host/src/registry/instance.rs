//! The life of one reconciler: resolve its kinds (retrying while they are
//! missing), check its policy, wait for its first module, then run its
//! controller until stopped. Each stage reports in the Reconciler's status.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Host;
use super::module::{ModuleWatch, watch_modules};
use super::status::{MODULE_READY, READY, StatusReport};
use crate::controller::events::ParentEvents;
use crate::controller::guest::GuestCaller;
use crate::controller::{self, Setup, kinds};
use crate::crd::{ModuleSource, ReconcilerKey, ReconcilerSpec};
use crate::policy::Policy;

/// First wait before resolving missing kinds again; doubles up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait between two attempts to resolve kinds.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the registry keeps of a running reconciler.
pub struct Instance {
    /// The spec it runs.
    pub spec: ReconcilerSpec,
    /// Replaces the module source without a restart.
    pub module_source: watch::Sender<ModuleSource>,
    /// Its status.
    pub report: Arc<StatusReport>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Instance {
    /// Starts a reconciler.
    pub fn start(
        host: Arc<Host>,
        key: ReconcilerKey,
        spec: ReconcilerSpec,
        generation: Option<i64>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (module_source, source) = watch::channel(spec.module.clone());
        let report = Arc::new(StatusReport::default());
        report.generation(generation);
        let task = tokio::spawn(run(
            host,
            key,
            spec.clone(),
            report.clone(),
            source,
            stopped,
        ));
        Self {
            spec,
            module_source,
            report,
            stop,
            task,
        }
    }

    /// Stops it and waits until its controller has finished its passes.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "a reconciler task failed");
        }
    }
}

async fn run(
    host: Arc<Host>,
    key: ReconcilerKey,
    spec: ReconcilerSpec,
    report: Arc<StatusReport>,
    source: watch::Receiver<ModuleSource>,
    stopped: watch::Receiver<bool>,
) {
    let flusher = {
        let (report, client, key) = (report.clone(), host.client.clone(), key.clone());
        tokio::spawn(async move { report.flush_forever(client, key).await })
    };
    let (serving, module) = watch::channel(None);
    let module_watch = ModuleWatch {
        key: key.clone(),
        namespace: key
            .namespace
            .clone()
            .unwrap_or_else(|| host.namespace.clone()),
        source,
        serving,
        report: report.clone(),
    };
    report.condition(
        READY,
        false,
        "Starting",
        "resolving the kinds through discovery",
    );
    report.condition(
        MODULE_READY,
        false,
        "Loading",
        "reading the module's ConfigMaps",
    );
    let modules = tokio::spawn(watch_modules(module_watch, host.clone()));
    serve(&host, &key, spec, module.clone(), &report, stopped).await;
    modules.abort();
    if module.borrow().is_some() {
        host.modules_loaded(-1);
    }
    // Let the last status reach the API server before the flusher goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    flusher.abort();
    host.metrics.forget(&key.label_value());
    tracing::info!(reconciler = %key, "reconciler stopped");
}

/// Resolves, checks, waits for the module, then runs the controller.
async fn serve(
    host: &Arc<Host>,
    key: &ReconcilerKey,
    spec: ReconcilerSpec,
    mut module: watch::Receiver<Option<Arc<crate::runtime::LoadedModule>>>,
    report: &Arc<StatusReport>,
    mut stopped: watch::Receiver<bool>,
) {
    let Some(kinds) = until_stopped(&mut stopped, resolve_kinds(host, key, &spec, report)).await
    else {
        return;
    };
    let refused = |reason: &str, message: String| {
        tracing::warn!(reconciler = %key, reason, %message, "reconciler cannot run");
        report.condition(READY, false, reason, message);
    };
    let policy = match Policy::for_reconciler(&spec, kinds.cluster_scoped_children()) {
        Ok(policy) => policy,
        Err(error) => {
            refused(error.reason(), error.to_string());
            let _ = stopped.wait_for(|stop| *stop).await;
            return;
        }
    };
    let writer = match host.writer_for(key, &spec) {
        Ok(writer) => writer,
        Err(error) => {
            refused("ImpersonationFailed", error.to_string());
            let _ = stopped.wait_for(|stop| *stop).await;
            return;
        }
    };
    if module.borrow().is_none() {
        report.condition(
            READY,
            false,
            "WaitingForModule",
            "no module loaded yet; see ModuleReady",
        );
        report.condition(
            MODULE_READY,
            false,
            "Loading",
            "reading the module's ConfigMaps",
        );
        if until_stopped(&mut stopped, module.wait_for(Option::is_some))
            .await
            .is_none()
        {
            return;
        }
    }
    let message = if kinds.parent.has_status {
        format!("watching {} objects", kinds.parent.resource.kind)
    } else {
        format!(
            "watching {} objects; their CRD has no status subresource, so parents' status is not written (add `subresources: {{status: {{}}}}` to it)",
            kinds.parent.resource.kind
        )
    };
    report.condition(READY, true, "Running", message);
    let setup = Setup {
        key: key.clone(),
        caller: GuestCaller {
            name: key.name.as_str().into(),
            label: key.label_value().into(),
            policy: Arc::new(policy),
            slots: host.slots.clone(),
            metrics: host.metrics.clone(),
        },
        spec,
        kinds,
        module,
        client: host.client.clone(),
        writer,
        events: ParentEvents::new(host.client.clone(), &host.identity),
        metrics: host.metrics.clone(),
        report: report.clone(),
        scope: key.namespace.clone(),
    };
    controller::run(setup, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    })
    .await;
}

/// Runs `work` unless the reconciler is stopped first (or its stop sender
/// is gone, which also means stop).
async fn until_stopped<T>(
    stopped: &mut watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        result = work => Some(result),
        _ = stopped.wait_for(|stop| *stop) => None,
    }
}

/// Resolves the kinds, retrying with backoff while any is missing.
async fn resolve_kinds(
    host: &Host,
    key: &ReconcilerKey,
    spec: &ReconcilerSpec,
    report: &StatusReport,
) -> kinds::Kinds {
    let mut wait = RETRY_BASE;
    loop {
        match kinds::resolve(&host.client, spec).await {
            Ok(kinds) => return kinds,
            Err(error) => {
                tracing::warn!(reconciler = %key, reason = error.reason(), %error, retry_in = ?wait, "kinds not resolved");
                report.condition(READY, false, error.reason(), format!("{error}; retrying"));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}
