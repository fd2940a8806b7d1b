//! The life of one reconciler: check its confinement (before anything is
//! read for it), resolve its kinds (retrying while they are missing or its
//! identity may not read them), check its policy, wait for its first module,
//! then run its controller until stopped. Each stage reports in the
//! Reconciler's status.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Host;
use super::module::{ModuleWatch, watch_modules};
use super::status::{MODULE_READY, READY, StatusReport};
use crate::controller::events::ParentEvents;
use crate::controller::guest::GuestCaller;
use crate::controller::{self, Setup, kinds};
use crate::crd::{self, Mode, ModuleSource, ReconcilerKey, ReconcilerSpec};
use crate::policy::Policy;
use crate::tenancy::Identity;
use crate::tenancy::access::{self, AccessError};
use crate::tenancy::confine::{self, ConfinementError};

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
    mut stopped: watch::Receiver<bool>,
) {
    let flusher = {
        let (report, client, key) = (report.clone(), host.client.clone(), key.clone());
        tokio::spawn(async move { report.flush_forever(client, key).await })
    };
    let identity = Identity::of(&key, &spec, &host.tenancy, &host.namespace);
    // Before anything is read for it, not even its module.
    let checked = crd::check(&spec)
        .map_err(|error| (error.reason(), error.to_string()))
        .and_then(|()| {
            confine::check_spec(&key, &spec, &host.tenancy, &identity, host.user.as_deref())
                .map_err(|error| (error.reason(), error.to_string()))
        });
    match checked {
        Ok(()) => load_and_serve(&host, &key, spec, identity, &report, source, stopped).await,
        Err((reason, message)) => {
            refuse(&key, &report, reason, message);
            report.condition(
                MODULE_READY,
                false,
                "NotLoaded",
                "the reconciler is refused; see Ready",
            );
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    }
    // Let the last status reach the API server before the flusher goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    flusher.abort();
    host.metrics.forget(&key.label_value());
    tracing::info!(reconciler = %key, "reconciler stopped");
}

/// Records why a reconciler cannot run, in its log and its `Ready` condition.
fn refuse(key: &ReconcilerKey, report: &StatusReport, reason: &str, message: String) {
    tracing::warn!(reconciler = %key, reason, %message, "reconciler cannot run");
    report.condition(READY, false, reason, message);
}

/// Watches the module's ConfigMaps (hot reload) while serving the
/// reconciler, until it is stopped.
async fn load_and_serve(
    host: &Arc<Host>,
    key: &ReconcilerKey,
    spec: ReconcilerSpec,
    identity: Identity,
    report: &Arc<StatusReport>,
    source: watch::Receiver<ModuleSource>,
    stopped: watch::Receiver<bool>,
) {
    let (serving, module) = watch::channel(None);
    let module_watch = ModuleWatch {
        key: key.clone(),
        default_namespace: key
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
    serve(host, key, identity, spec, module.clone(), report, stopped).await;
    modules.abort();
    if module.borrow().is_some() {
        host.modules_loaded(-1);
    }
}

/// Resolves and checks the kinds, checks what the identity may read and the
/// policy, waits for the module, then runs the controller.
async fn serve(
    host: &Arc<Host>,
    key: &ReconcilerKey,
    identity: Identity,
    spec: ReconcilerSpec,
    mut module: watch::Receiver<Option<Arc<crate::runtime::LoadedModule>>>,
    report: &Arc<StatusReport>,
    mut stopped: watch::Receiver<bool>,
) {
    let refused = |reason: &str, message: String| refuse(key, report, reason, message);
    let writer = match identity.client(&host.config) {
        Ok(writer) => writer,
        Err(error) => {
            refused("ImpersonationFailed", error.to_string());
            let _ = stopped.wait_for(|stop| *stop).await;
            return;
        }
    };
    // Each round runs the controller until the reconciler is stopped or its
    // identity loses read access, which sends it back to waiting for access.
    loop {
        let checked = until_stopped(
            &mut stopped,
            resolve_and_check(host, key, &spec, &identity, &writer, report),
        )
        .await;
        let kinds = match checked {
            None => return,
            Some(Ok(kinds)) => kinds,
            Some(Err(error)) => {
                refused(error.reason(), error.to_string());
                let _ = stopped.wait_for(|stop| *stop).await;
                return;
            }
        };
        let policy = match Policy::for_reconciler(&spec, kinds.cluster_scoped_children()) {
            Ok(policy) => policy,
            Err(error) => {
                refused(error.reason(), error.to_string());
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
            if until_stopped(&mut stopped, module.wait_for(Option::is_some))
                .await
                .is_none()
            {
                return;
            }
        }
        report.condition(
            READY,
            true,
            "Running",
            running_message(&kinds, &identity, spec.mode),
        );
        let revoked = access_revoked(
            writer.clone(),
            identity.clone(),
            kinds.clone(),
            key.namespace
                .clone()
                .filter(|_| confine::is_confined(key, &host.tenancy)),
            host.tenancy.access_recheck,
        );
        let setup = Setup {
            key: key.clone(),
            caller: GuestCaller {
                name: key.name.as_str().into(),
                label: key.label_value().into(),
                policy: Arc::new(policy),
                slots: host.slots.clone(),
                metrics: host.metrics.clone(),
            },
            spec: spec.clone(),
            kinds,
            module: module.clone(),
            client: host.client.clone(),
            writer: writer.clone(),
            events: ParentEvents::new(host.client.clone(), &host.identity),
            metrics: host.metrics.clone(),
            report: report.clone(),
            scope: key.namespace.clone(),
        };
        // The controller's shutdown future must be `Sync`, which API calls are
        // not: the re-checks run in a task of their own and signal here.
        let (lost, mut access_lost) = watch::channel(false);
        let checks = {
            let (report, key) = (report.clone(), key.clone());
            tokio::spawn(async move {
                let error = revoked.await;
                tracing::warn!(reconciler = %key, reason = error.reason(), %error, "read access revoked; the controller stops until it is granted again");
                report.condition(READY, false, error.reason(), error.to_string());
                lost.send_replace(true);
            })
        };
        let mut stop = stopped.clone();
        controller::run(setup, async move {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => {}
                _ = access_lost.wait_for(|lost| *lost) => {}
            }
        })
        .await;
        checks.abort();
        if *stopped.borrow() {
            return;
        }
    }
}

/// Resolves with the refusal once `identity` may no longer read what a
/// reconciler confined to `namespace` is served, reviewed `every` so often;
/// never when it is not confined. A review that fails (the API server unreachable) is not a
/// refusal: it is logged and tried again at the next check.
async fn access_revoked(
    client: kube::Client,
    identity: Identity,
    kinds: kinds::Kinds,
    namespace: Option<String>,
    every: Duration,
) -> AccessError {
    let Some(namespace) = namespace else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(every).await;
        match access::check(&client, &identity, &access::reads(&kinds, &namespace)).await {
            Ok(()) => {}
            Err(error @ AccessError::Denied { .. }) => return error,
            Err(error) => tracing::warn!(%error, "could not check read access again; keeping it"),
        }
    }
}

/// The `Ready=True` message: what is watched, as whom, and what the user
/// may want to fix.
fn running_message(kinds: &kinds::Kinds, identity: &Identity, mode: Mode) -> String {
    let kind = &kinds.parent.resource.kind;
    let mut message = format!("watching {kind} objects; writing as {identity}");
    if mode == Mode::Decorator {
        message.push_str("; decorating them: their status is never written");
    }
    if !kinds.parent.has_status && mode == Mode::Composite {
        message.push_str("; their CRD has no status subresource, so parents' status is not written (add `subresources: {status: {}}` to it)");
    }
    message
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

/// Resolves the kinds and checks that the reconciler may use them, retrying
/// with backoff while a kind is missing or its identity may not read one
/// (an administrator may install the CRD or grant the Role later), and at
/// once when a CRD changes; a kind that confinement forbids is final until
/// the spec changes.
async fn resolve_and_check(
    host: &Host,
    key: &ReconcilerKey,
    spec: &ReconcilerSpec,
    identity: &Identity,
    client: &kube::Client,
    report: &StatusReport,
) -> Result<kinds::Kinds, ConfinementError> {
    let mut wait = RETRY_BASE;
    let mut crd_changes = host.crd_changes.subscribe();
    loop {
        crd_changes.mark_unchanged();
        let (reason, message) = match kinds::resolve(&host.client, spec).await {
            Ok(kinds) => {
                confine::check_kinds(key, &kinds, &host.tenancy)?;
                let Some(namespace) = key
                    .namespace
                    .as_deref()
                    .filter(|_| confine::is_confined(key, &host.tenancy))
                else {
                    return Ok(kinds);
                };
                match access::check(client, identity, &access::reads(&kinds, namespace)).await {
                    Ok(()) => return Ok(kinds),
                    Err(error) => (error.reason(), error.to_string()),
                }
            }
            Err(error) => (error.reason(), error.to_string()),
        };
        tracing::warn!(reconciler = %key, reason, %message, retry_in = ?wait, "reconciler not ready to run");
        report.condition(READY, false, reason, format!("{message}; retrying"));
        tokio::select! {
            () = tokio::time::sleep(wait) => wait = (wait * 2).min(RETRY_MAX),
            // A CRD installed or established: its kind may be served now.
            _ = crd_changes.changed() => wait = RETRY_BASE,
        }
    }
}
