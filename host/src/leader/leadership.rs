//! Holding the lease once acquired: renewal in the background, the signal
//! that it was lost, and the graceful release.

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{debug, error, warn};

use super::{Attempt, LeaderElector, LeaseError};

/// This host holds the lease. Dropping it stops the renewal without
/// releasing the lease (as a crash would): a successor then waits for it to
/// expire; call [`release`](Self::release) on a graceful shutdown.
#[derive(Debug)]
pub struct Leadership {
    elector: LeaderElector,
    lost: watch::Receiver<bool>,
    renewal: JoinHandle<()>,
}

impl Leadership {
    /// Starts renewing the lease `elector` just acquired.
    pub(super) fn start(elector: LeaderElector) -> Self {
        let (lost_sender, lost) = watch::channel(false);
        let renewal = tokio::spawn(renew(elector.clone(), lost_sender));
        Self {
            elector,
            lost,
            renewal,
        }
    }

    /// Resolves when the leadership is lost: renewal failed for longer than
    /// the renew deadline, or another host holds the lease. The host must
    /// then stop working (client-go's hosts exit). Also resolves once this
    /// leadership is released or dropped.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut lost = self.lost.clone();
        async move {
            // An error means the renewal task ended: no longer leading either.
            let _ = lost.wait_for(|lost| *lost).await;
        }
    }

    /// Stops renewing and gives the lease up so that a successor takes it
    /// at once rather than after the lease duration.
    pub async fn release(mut self) -> Result<(), LeaseError> {
        self.renewal.abort();
        // Wait for the task to stop so no renewal lands after the release.
        let _ = (&mut self.renewal).await;
        self.elector.release().await
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Renews the lease every retry period; sets `lost` when the lease went to
/// another host or could not be renewed within the renew deadline.
async fn renew(elector: LeaderElector, lost: watch::Sender<bool>) {
    let timing = elector.timing;
    // The lease was written just before; it holds from then.
    let mut renewed = Instant::now();
    loop {
        sleep(timing.retry_period).await;
        let deadline = renewed + timing.renew_deadline;
        let started = Instant::now();
        match timeout_at(deadline, elector.try_acquire_or_renew()).await {
            Ok(Ok(Attempt::Held)) => {
                renewed = started;
                continue;
            }
            Ok(Ok(Attempt::HeldBy { holder, .. })) => {
                error!(lease = %elector, %holder, "leadership lost: another host holds the lease");
                break;
            }
            Ok(Ok(Attempt::Raced)) => {
                debug!(lease = %elector, "lease changed while renewing; retrying")
            }
            Ok(Err(error)) => warn!(%error, "cannot renew the lease; retrying"),
            Err(_) => {}
        }
        if Instant::now() + timing.retry_period >= deadline {
            error!(
                lease = %elector,
                deadline = ?timing.renew_deadline,
                "leadership lost: the lease could not be renewed within the renew deadline"
            );
            break;
        }
    }
    lost.send_replace(true);
}
