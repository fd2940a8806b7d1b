//! How every watch of the host recovers from the API server going away.
//!
//! kube-runtime's default backoff grows to 30 s (with jitter, more) and only
//! resets after two minutes without errors; and when an API server comes
//! back, every watch resuming from its last resourceVersion is answered
//! `410 Gone` (a restarted API server's watch cache starts afresh), an error
//! that backoff then delays further. Together they blinded the host for
//! minutes after a 20 s outage. Here: a `410` is no error to wait on (the
//! watcher has already fallen back to a fresh list, which is what should
//! happen at once), and other errors back off from 250 ms to at most 5 s,
//! starting over at the first success.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};

/// First wait after a watch error.
const BASE: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
const MAX: Duration = Duration::from_secs(5);

/// Doubles from [`BASE`] to [`MAX`]; [`Backoff::reset`] (on a success) starts over.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: BASE }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = BASE;
    }
}

/// Whether a watch error is the API server saying the resourceVersion is
/// gone (`410`): the watcher relists next, and nothing should delay it.
pub fn is_expired(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

/// How a watcher stream recovers: in place of kube-runtime's
/// `default_backoff()`.
pub trait Recovering<K: Send>:
    Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Sized + Send
{
    /// Relists at once after a `410` (logged, not passed on), and otherwise
    /// backs off with [`WatchBackoff`].
    fn recovering(self) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send {
        self.filter(|item| {
            let expired = matches!(item, Err(error) if is_expired(error));
            if expired {
                tracing::info!("a watch's resourceVersion expired (410 Gone); listing afresh");
            }
            std::future::ready(!expired)
        })
        .backoff(WatchBackoff::default())
    }
}

impl<K: Send, S> Recovering<K> for S where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Sized + Send
{
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[test]
    fn the_backoff_doubles_to_five_seconds_and_starts_over_after_a_success() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u128> = (0..7)
            .map(|_| backoff.next().unwrap().as_millis())
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(BASE));
    }

    #[test]
    fn only_a_gone_resource_version_counts_as_expired() {
        let status =
            |code| Box::new(Status::failure("too old resource version", "Expired").with_code(code));
        assert!(is_expired(&watcher::Error::WatchError(status(410))));
        assert!(!is_expired(&watcher::Error::WatchError(status(500))));
        assert!(!is_expired(&watcher::Error::NoResourceVersion));
    }
}
