//! Drift: a field the guest sets that someone else changes is restored, but
//! at most [`RESTORES_PER_WINDOW`] times per child per [`WINDOW`], so that
//! two controllers fighting over a field cannot drive the host into a hot
//! loop; each restore is announced with who changed the field.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Restores of one child allowed per window.
pub const RESTORES_PER_WINDOW: usize = 6;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// A child: its kind, namespace and name.
pub type ChildKey = (String, Option<String>, String);

/// Recent restores per child.
#[derive(Default)]
pub struct DriftGuard {
    restores: Mutex<HashMap<ChildKey, VecDeque<Instant>>>,
}

impl DriftGuard {
    /// Counts a restore of `child` now if one is allowed; otherwise says how
    /// long until one is.
    pub fn allow(&self, child: ChildKey) -> Result<(), Duration> {
        self.allow_at(child, Instant::now())
    }

    fn allow_at(&self, child: ChildKey, now: Instant) -> Result<(), Duration> {
        let mut restores = self.restores.lock().expect("drift guard lock");
        restores.retain(|_, times| times.back().is_some_and(|last| now - *last < WINDOW));
        let times = restores.entry(child).or_default();
        while times.front().is_some_and(|first| now - *first >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= RESTORES_PER_WINDOW {
            let first = *times.front().expect("a full window has a first restore");
            return Err(WINDOW - (now - first));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_restored_at_most_six_times_a_minute_and_others_are_not_held_back() {
        let guard = DriftGuard::default();
        let child = || {
            (
                "Deployment".to_string(),
                Some("shop".to_string()),
                "web".to_string(),
            )
        };
        let start = Instant::now();
        for second in 0..RESTORES_PER_WINDOW as u64 {
            assert_eq!(
                guard.allow_at(child(), start + Duration::from_secs(second)),
                Ok(())
            );
        }
        let held = guard.allow_at(child(), start + Duration::from_secs(10));
        assert_eq!(held, Err(Duration::from_secs(50)));
        let other = (
            "Service".to_string(),
            Some("shop".to_string()),
            "web".to_string(),
        );
        assert_eq!(
            guard.allow_at(other, start + Duration::from_secs(10)),
            Ok(())
        );
        // A minute after the first restore, one more is allowed.
        assert_eq!(guard.allow_at(child(), start + WINDOW), Ok(()));
    }
}
