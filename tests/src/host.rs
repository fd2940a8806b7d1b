//! A Sous host running in the test process, on a thread and async runtime of
//! its own, so a test can stop it gracefully or kill it outright.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use sous::leader::LeaseTiming;
use sous::operator::{self, OperatorOptions};
use sous::tenancy::Tenancy;
use tokio::sync::oneshot;

/// A running host.
pub struct TestHost {
    stop: Option<oneshot::Sender<()>>,
    signals: mpsc::Sender<Ending>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

/// How the host's thread learns that it is over.
enum Ending {
    /// The host returned.
    Finished(anyhow::Result<()>),
    /// The test kills it.
    Kill,
}

/// Options for a test host serving only `namespace` (its own namespace too):
/// no health server, no disk cache, two guest slots.
pub fn options(
    namespace: &str,
    identity: &str,
    leader_election: Option<LeaseTiming>,
) -> OperatorOptions {
    OperatorOptions {
        namespace: namespace.to_string(),
        watch_namespace: Some(namespace.to_string()),
        identity: identity.to_string(),
        leader_election,
        pod_uid: None,
        health_addr: None,
        cache_dir: None,
        guest_slots: 2,
        reconciler_selector: None,
        tenancy: Tenancy::default(),
    }
}

impl TestHost {
    /// Starts `sous run` with `config` and `options`.
    pub fn start(config: kube::Config, options: OperatorOptions) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let (signals, endings) = mpsc::channel();
        let finished = signals.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.spawn(async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                let result = operator::run(config, options, shutdown).await;
                let _ = finished.send(Ending::Finished(result));
            });
            let ending = endings.recv().unwrap_or(Ending::Kill);
            // On a kill everything is dropped mid-flight: no graceful
            // shutdown, no Lease release, as when a process crashes.
            runtime.shutdown_timeout(Duration::from_secs(1));
            match ending {
                Ending::Finished(result) => result,
                Ending::Kill => Ok(()),
            }
        });
        Self {
            stop: Some(stop),
            signals,
            thread: Some(thread),
        }
    }

    /// Stops the host gracefully and returns how it ended.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    /// Kills the host as a crash would: nothing is released.
    pub fn kill(mut self) {
        let _ = self.signals.send(Ending::Kill);
        let _ = self.join();
    }

    /// Whether the host has ended by itself.
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("the host thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.signals.send(Ending::Kill);
            let _ = self.join();
        }
    }
}
