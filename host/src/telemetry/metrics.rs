//! The host's Prometheus metrics: one registry per host instance, no global state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// How a reconcile pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The cluster was made equal to the guest's answer.
    Success,
    /// The pass failed; the reason is counted by [`Metrics::error`].
    Error,
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            Self::Success => "success",
            Self::Error => "error",
        })
    }
}

/// What a write of a child did, as counted by `sous_child_writes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildWrite {
    /// Server-side applied (created, changed or restored).
    Apply,
    /// Deleted and created anew (`Recreate`).
    Recreate,
    /// Deleted as no longer desired.
    Prune,
    /// Released as no longer desired (`deletePolicy: Orphan`).
    Release,
    /// An existing object adopted (`adopt: IfUnowned`).
    Adopt,
    /// Fields applied to an object the reconciler does not own (a patch).
    Patch,
    /// The parent's labels or annotations applied.
    ParentMetadata,
}

impl ChildWrite {
    const ALL: [Self; 7] = [
        Self::Apply,
        Self::Recreate,
        Self::Prune,
        Self::Release,
        Self::Adopt,
        Self::Patch,
        Self::ParentMetadata,
    ];
}

impl EncodeLabelValue for ChildWrite {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(match self {
            Self::Apply => "apply",
            Self::Recreate => "recreate",
            Self::Prune => "prune",
            Self::Release => "release",
            Self::Adopt => "adopt",
            Self::Patch => "patch",
            Self::ParentMetadata => "parent-metadata",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WriteLabels {
    reconciler: String,
    action: ChildWrite,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReconcilerLabel {
    reconciler: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    reconciler: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    reconciler: String,
    reason: String,
}

type HistogramFamily = Family<ReconcilerLabel, Histogram, fn() -> Histogram>;

/// Reconcile passes: 1 ms to about 65 s (they include API round trips).
fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Guest calls: 16 µs to about 4 s, covering a warm Rust guest (tens of µs)
/// to an interpreted one near its deadline.
fn guest_call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_016, 2.0, 19))
}

/// Counters, histograms and gauges of one host, encoded as OpenMetrics text.
///
/// Series are labelled by reconciler (`ReconcilerKey::label_value()`); call
/// [`forget`](Self::forget) when a reconciler is deleted so its series go too.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    reconcile_duration: HistogramFamily,
    errors: Family<ErrorLabels, Counter>,
    /// The error reasons seen per reconciler, so `forget` can find their series.
    error_reasons: Mutex<BTreeMap<String, BTreeSet<String>>>,
    guest_call_duration: HistogramFamily,
    queue_depth: Family<ReconcilerLabel, Gauge>,
    modules_loaded: Gauge,
    child_writes: Family<WriteLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered and no series yet.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::default();
        registry.register(
            "sous_reconciles",
            "Reconcile passes, by outcome",
            reconciles.clone(),
        );
        let reconcile_duration: HistogramFamily = Family::new_with_constructor(reconcile_histogram);
        registry.register_with_unit(
            "sous_reconcile_duration",
            "Time of a reconcile pass, guest call and API writes included",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let errors = Family::default();
        registry.register(
            "sous_reconcile_errors",
            "Failed reconcile passes, by reason",
            errors.clone(),
        );
        let guest_call_duration: HistogramFamily =
            Family::new_with_constructor(guest_call_histogram);
        registry.register_with_unit(
            "sous_guest_call_duration",
            "Time of one guest call",
            Unit::Seconds,
            guest_call_duration.clone(),
        );
        let queue_depth = Family::default();
        registry.register(
            "sous_queue_depth",
            "Parents waiting for a guest slot",
            queue_depth.clone(),
        );
        let modules_loaded = Gauge::default();
        registry.register(
            "sous_modules_loaded",
            "Compiled modules held in memory",
            modules_loaded.clone(),
        );
        let child_writes = Family::default();
        registry.register(
            "sous_child_writes",
            "Writes of children made (dry runs not counted), by action",
            child_writes.clone(),
        );
        Self {
            registry,
            child_writes,
            reconciles,
            reconcile_duration,
            errors,
            error_reasons: Mutex::default(),
            guest_call_duration,
            queue_depth,
            modules_loaded,
        }
    }

    /// Counts a finished reconcile pass and records its duration.
    pub fn reconcile_finished(&self, reconciler: &str, outcome: Outcome, duration: Duration) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                reconciler: reconciler.to_string(),
                outcome,
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&label(reconciler))
            .observe(duration.as_secs_f64());
    }

    /// Counts an error of a reconcile pass; `reason` is the error's `reason()`.
    pub fn error(&self, reconciler: &str, reason: &str) {
        self.error_reasons
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(reconciler.to_string())
            .or_default()
            .insert(reason.to_string());
        self.errors
            .get_or_create(&ErrorLabels {
                reconciler: reconciler.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one write of a child.
    pub fn child_written(&self, reconciler: &str, action: ChildWrite) {
        self.child_writes
            .get_or_create(&WriteLabels {
                reconciler: reconciler.to_string(),
                action,
            })
            .inc();
    }

    /// Records the duration of one guest call.
    pub fn guest_call_finished(&self, reconciler: &str, duration: Duration) {
        self.guest_call_duration
            .get_or_create(&label(reconciler))
            .observe(duration.as_secs_f64());
    }

    /// The number of guest calls recorded for a reconciler.
    pub fn guest_calls(&self, reconciler: &str) -> u64 {
        self.guest_call_duration
            .get(&label(reconciler))
            .map_or(0, |histogram| histogram.count())
    }

    /// Counts one parent waiting for a guest slot until the guard drops.
    pub fn queue_depth(&self, reconciler: &str) -> QueueGuard {
        let gauge = self.queue_depth.get_or_create_owned(&label(reconciler));
        gauge.inc();
        QueueGuard { gauge }
    }

    /// Sets the number of compiled modules held in memory.
    pub fn set_modules_loaded(&self, count: i64) {
        self.modules_loaded.set(count);
    }

    /// Drops every series of a deleted reconciler. A [`QueueGuard`] still
    /// alive then decrements a detached gauge, which is harmless.
    pub fn forget(&self, reconciler: &str) {
        for outcome in [Outcome::Success, Outcome::Error] {
            self.reconciles.remove(&OutcomeLabels {
                reconciler: reconciler.to_string(),
                outcome,
            });
        }
        let reasons = self
            .error_reasons
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(reconciler)
            .unwrap_or_default();
        for reason in reasons {
            self.errors.remove(&ErrorLabels {
                reconciler: reconciler.to_string(),
                reason,
            });
        }
        for action in ChildWrite::ALL {
            self.child_writes.remove(&WriteLabels {
                reconciler: reconciler.to_string(),
                action,
            });
        }
        let label = label(reconciler);
        self.reconcile_duration.remove(&label);
        self.guest_call_duration.remove(&label);
        self.queue_depth.remove(&label);
    }

    /// Every series in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn label(reconciler: &str) -> ReconcilerLabel {
    ReconcilerLabel {
        reconciler: reconciler.to_string(),
    }
}

/// One parent waiting for a guest slot; decrements `sous_queue_depth` when dropped.
#[derive(Debug)]
#[must_use = "the queue depth goes back down as soon as the guard is dropped"]
pub struct QueueGuard {
    gauge: Gauge,
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_with(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn encode_names_every_series_with_its_labels() {
        let metrics = Metrics::new();
        metrics.reconcile_finished("ns.app", Outcome::Success, Duration::from_millis(250));
        metrics.reconcile_finished("ns.app", Outcome::Error, Duration::from_millis(500));
        metrics.reconcile_finished("ns.app", Outcome::Success, Duration::from_millis(250));
        metrics.error("ns.app", "OutOfFuel");
        metrics.guest_call_finished("ns.app", Duration::from_micros(40));
        metrics.set_modules_loaded(2);
        metrics.child_written("ns.app", ChildWrite::Recreate);
        metrics.child_written("ns.app", ChildWrite::Release);
        metrics.child_written("ns.app", ChildWrite::Release);
        let text = metrics.encode();

        assert!(
            text.contains(r#"sous_reconciles_total{reconciler="ns.app",outcome="success"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sous_reconciles_total{reconciler="ns.app",outcome="error"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"sous_reconcile_errors_total{reconciler="ns.app",reason="OutOfFuel"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"sous_reconcile_duration_seconds_count{reconciler="ns.app"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sous_reconcile_duration_seconds_sum{reconciler="ns.app"} 1.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sous_guest_call_duration_seconds_count{reconciler="ns.app"} 1"#),
            "{text}"
        );
        assert!(text.contains("sous_modules_loaded 2"), "{text}");
        assert!(
            text.contains(r#"sous_child_writes_total{reconciler="ns.app",action="release"} 2"#),
            "{text}"
        );
        metrics.forget("ns.app");
        assert!(!metrics.encode().contains("sous_child_writes_total{"));
        assert!(
            text.contains("# UNIT sous_guest_call_duration_seconds seconds"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn guest_call_buckets_separate_microseconds_from_seconds() {
        let metrics = Metrics::new();
        metrics.guest_call_finished("r", Duration::from_micros(20));
        metrics.guest_call_finished("r", Duration::from_secs(2));
        let text = metrics.encode();
        let buckets = lines_with(&text, "sous_guest_call_duration_seconds_bucket");
        let first = &buckets[0];
        assert!(first.contains(r#"le="0.000016""#), "{first}");
        assert!(first.ends_with(" 0"), "{first}");
        let holding_one = buckets.iter().filter(|line| line.ends_with(" 1")).count();
        assert!(
            holding_one > 10,
            "20 µs and 2 s fall far apart: {buckets:?}"
        );
        let last_finite = &buckets[buckets.len() - 2];
        assert!(
            last_finite.ends_with(" 2"),
            "2 s is under the top bucket: {last_finite}"
        );
    }

    #[test]
    fn guest_calls_counts_per_reconciler() {
        let metrics = Metrics::new();
        assert_eq!(metrics.guest_calls("a"), 0);
        metrics.guest_call_finished("a", Duration::from_micros(30));
        metrics.guest_call_finished("a", Duration::from_micros(30));
        metrics.guest_call_finished("b", Duration::from_micros(30));
        assert_eq!(metrics.guest_calls("a"), 2);
        assert_eq!(metrics.guest_calls("b"), 1);
    }

    #[test]
    fn queue_guard_decrements_when_dropped() {
        let metrics = Metrics::new();
        let first = metrics.queue_depth("r");
        let second = metrics.queue_depth("r");
        assert!(
            metrics
                .encode()
                .contains(r#"sous_queue_depth{reconciler="r"} 2"#)
        );
        drop(first);
        assert!(
            metrics
                .encode()
                .contains(r#"sous_queue_depth{reconciler="r"} 1"#)
        );
        drop(second);
        assert!(
            metrics
                .encode()
                .contains(r#"sous_queue_depth{reconciler="r"} 0"#)
        );
    }

    #[test]
    fn forget_drops_only_that_reconcilers_series() {
        let metrics = Metrics::new();
        for reconciler in ["gone", "kept"] {
            metrics.reconcile_finished(reconciler, Outcome::Success, Duration::from_millis(1));
            metrics.reconcile_finished(reconciler, Outcome::Error, Duration::from_millis(1));
            metrics.error(reconciler, "OutOfFuel");
            metrics.error(reconciler, "GuestTrapped");
            metrics.guest_call_finished(reconciler, Duration::from_micros(30));
        }
        let waiting = metrics.queue_depth("gone");
        metrics.forget("gone");
        drop(waiting);
        let text = metrics.encode();
        assert!(!text.contains(r#"reconciler="gone""#), "{text}");
        assert_eq!(
            lines_with(&text, "sous_reconciles_total").len(),
            2,
            "{text}"
        );
        assert_eq!(lines_with(&text, "sous_reconcile_errors_total").len(), 2);
        assert_eq!(metrics.guest_calls("gone"), 0);
        assert_eq!(metrics.guest_calls("kept"), 1);
    }

    #[test]
    fn hosts_in_one_process_do_not_share_series() {
        let first = Metrics::new();
        let second = Metrics::new();
        first.guest_call_finished("r", Duration::from_micros(30));
        assert_eq!(first.guest_calls("r"), 1);
        assert_eq!(second.guest_calls("r"), 0);
    }
}
