//! Timing: interleaved rounds of calls, medians and 99th percentiles.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many calls to make of each operation.
pub struct Plan {
    /// Calls of each operation before measuring.
    pub warmup: usize,
    /// Measured calls of each operation, in `rounds` interleaved batches.
    pub iterations: usize,
    /// Batches that take turns, so that whatever else the machine is doing
    /// weighs on every operation alike.
    pub rounds: usize,
    /// Untimed calls before each batch: switching between operations leaves
    /// caches cold, which would otherwise show in the p99.
    pub rewarm: usize,
}

/// Median and 99th percentile of one measured operation.
pub struct Latencies {
    /// The median call.
    pub median: Duration,
    /// The 99th percentile call.
    pub p99: Duration,
}

/// Warms every operation up, then times `plan.iterations` calls of each, in
/// `plan.rounds` rounds that take turns.
pub fn measure_interleaved<T, const N: usize>(
    plan: &Plan,
    mut operations: [&mut dyn FnMut() -> T; N],
) -> [Latencies; N] {
    for operation in &mut operations {
        for _ in 0..plan.warmup {
            black_box(operation());
        }
    }
    let mut samples: [Vec<Duration>; N] =
        std::array::from_fn(|_| Vec::with_capacity(plan.iterations));
    for _ in 0..plan.rounds {
        for (operation, samples) in operations.iter_mut().zip(&mut samples) {
            for _ in 0..plan.rewarm {
                black_box(operation());
            }
            for _ in 0..plan.iterations / plan.rounds {
                let started = Instant::now();
                black_box(operation());
                samples.push(started.elapsed());
            }
        }
    }
    samples.map(|mut samples| {
        samples.sort();
        Latencies {
            median: samples[samples.len() / 2],
            p99: samples[samples.len() * 99 / 100],
        }
    })
}

/// The median duration of `runs` runs of `operation`.
pub fn median_of(runs: usize, mut operation: impl FnMut() -> Duration) -> Duration {
    let mut samples: Vec<Duration> = (0..runs).map(|_| operation()).collect();
    samples.sort();
    samples[runs / 2]
}

/// Milliseconds, for printing.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Microseconds, for printing.
pub fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
