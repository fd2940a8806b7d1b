//! The scale benchmark: N MyApp parents reconciled by `sous run` (release
//! build, its own process) against a control plane of etcd and
//! kube-apiserver only, beside the floor — a minimal client writing exactly
//! the same children and statuses — on a fresh control plane each.
//!
//! ```sh
//! cargo bench -p sous-tests --bench scale -- [--parents 1000,10000]
//!     [--modes before,during] [--quiet-seconds 60] [--floor-in-flight 64]
//! ```
//!
//! Prints a line per measurement, then `ratio sous/floor: X` per size and
//! mode, last. Without kube-apiserver it prints why it skipped.

mod cluster;
mod floor;
mod host;
mod probe;

use std::time::Duration;

use anyhow::{Context as _, bail};
use sous_tests::envtest::TestCluster;

use host::Mode;

/// How long one measurement may take before it fails.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What to measure.
struct Options {
    parents: Vec<usize>,
    modes: Vec<Mode>,
    quiet: Duration,
    floor_in_flight: usize,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Self> {
        let mut options = Self {
            parents: vec![1_000, 10_000],
            modes: vec![Mode::Before, Mode::During],
            quiet: Duration::from_secs(60),
            floor_in_flight: 64,
        };
        let mut args = args.skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--parents" => {
                    options.parents = value()?
                        .split(',')
                        .map(|n| n.trim().replace('_', "").parse())
                        .collect::<Result<_, _>>()
                        .context("--parents takes counts such as 1000,10000")?;
                }
                "--modes" => {
                    options.modes = value()?
                        .split(',')
                        .map(|mode| match mode.trim() {
                            "before" => Ok(Mode::Before),
                            "during" => Ok(Mode::During),
                            other => bail!("unknown mode `{other}`: before or during"),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--quiet-seconds" => options.quiet = Duration::from_secs(value()?.parse()?),
                "--floor-in-flight" => options.floor_in_flight = value()?.parse()?,
                // What cargo bench passes to every benchmark.
                "--bench" => {}
                other => bail!("unknown argument `{other}`"),
            }
        }
        Ok(options)
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse(std::env::args())?;
    if let Some(reason) = TestCluster::skip_reason() {
        println!("scale: skipped: {reason}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let mut ratios = Vec::new();
    for &count in &options.parents {
        let floor = floor::measure(count, options.floor_in_flight).await?;
        println!(
            "scale: {count} parents, floor ({} parents in flight): {:.1} s, {} writes, API server CPU {:.1} s",
            options.floor_in_flight,
            floor.elapsed.as_secs_f64(),
            floor.writes,
            floor.apiserver_cpu.as_secs_f64(),
        );
        for &mode in &options.modes {
            let run = host::measure(count, mode, options.quiet, TIMEOUT).await?;
            println!(
                "scale: {count} parents, {}: all Ready in {:.1} s; {} passes ({:.2} per parent); \
                 {} writes + {} dry runs; host CPU {:.1} s; API server CPU {:.1} s; host peak RSS {} MB; \
                 quiet {} s after: {} guest calls, {} writes",
                mode.describe(),
                run.converged.as_secs_f64(),
                run.passes,
                run.passes as f64 / count as f64,
                run.writes,
                run.dry_runs,
                run.host_cpu.as_secs_f64(),
                run.apiserver_cpu.as_secs_f64(),
                run.host_peak_rss >> 20,
                options.quiet.as_secs(),
                run.quiet_calls,
                run.quiet_writes,
            );
            let ratio = run.converged.as_secs_f64() / floor.elapsed.as_secs_f64();
            ratios.push(format!(
                "ratio sous/floor: {ratio:.2} ({count} parents, {})",
                mode.describe()
            ));
        }
    }
    for ratio in ratios {
        println!("{ratio}");
    }
    Ok(())
}
