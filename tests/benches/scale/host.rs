//! One measurement of the host: `sous run` (release build) as its own
//! process against the bench's control plane, the my-app Reconciler pushed
//! with `sous push`, N parents created before the host starts or while it
//! runs.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sous_tests::http::{self, metric_sum};

use crate::cluster::{Bench, NAMESPACE};
use crate::probe;

/// When the parents are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// All of them, then the host starts.
    Before,
    /// With the host running and its Reconciler ready.
    During,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Before => "parents created before the host starts",
            Self::During => "parents created while the host runs",
        }
    }
}

/// What one measurement found.
#[derive(Debug)]
pub struct HostRun {
    /// From the host's start (Before) or the first creation (During) until
    /// every parent was Ready.
    pub converged: Duration,
    pub passes: u64,
    pub writes: u64,
    pub dry_runs: u64,
    pub host_cpu: Duration,
    pub apiserver_cpu: Duration,
    pub host_peak_rss: u64,
    /// Guest calls and stored writes during the quiet period after convergence.
    pub quiet_calls: u64,
    pub quiet_writes: u64,
}

/// Runs the host over `count` parents in `mode`, then watches it for
/// `quiet` with nothing changing.
pub async fn measure(
    count: usize,
    mode: Mode,
    quiet: Duration,
    timeout: Duration,
) -> anyhow::Result<HostRun> {
    let bench = Bench::start().await?;
    push(&bench)?;
    let apiserver = bench
        .cluster
        .apiserver_pid()
        .context("kube-apiserver's pid")?;
    let addr = free_address()?;
    if mode == Mode::Before {
        bench.create_parents(count).await?;
    }
    let (writes_before, dry_runs_before) = probe::apiserver_writes(&bench.client).await;
    let cpu_before = probe::cpu_time(apiserver);
    let mut host = Host::start(&bench, addr)?;
    let mut started = Instant::now();
    let ready = tokio::spawn(probe::all_ready(bench.parents(), count, timeout));
    if mode == Mode::During {
        wait_reconciler_running(&bench, timeout).await?;
        started = Instant::now();
        bench.create_parents(count).await?;
    }
    let done = ready
        .await?
        .context("the parents did not all become Ready in time")?;
    host.check()?;
    let converged = done - started;

    // Let the last status writes land before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (writes, dry_runs) = probe::apiserver_writes(&bench.client).await;
    let apiserver_cpu = probe::cpu_time(apiserver).saturating_sub(cpu_before);
    let host_cpu = probe::cpu_time(host.pid());
    let metrics = http::get(addr, "/metrics").await.1;
    let passes = metric_sum(&metrics, "sous_reconciles_total", |_| true);
    let calls = metric_sum(&metrics, "sous_guest_call_duration_seconds_count", |_| true);
    tokio::time::sleep(quiet).await;
    let quiet_metrics = http::get(addr, "/metrics").await.1;
    let (quiet_writes, _) = probe::apiserver_writes(&bench.client).await;
    Ok(HostRun {
        converged,
        passes,
        writes: writes - writes_before,
        dry_runs: dry_runs - dry_runs_before,
        host_cpu,
        apiserver_cpu,
        host_peak_rss: probe::peak_rss(host.pid()),
        quiet_calls: metric_sum(
            &quiet_metrics,
            "sous_guest_call_duration_seconds_count",
            |_| true,
        ) - calls,
        quiet_writes: quiet_writes - writes,
    })
}

/// Pushes the my-app Reconciler (module ConfigMaps, ServiceAccount, Role) as
/// a user would.
fn push(bench: &Bench) -> anyhow::Result<()> {
    let module = sous_tests::guests::guest("my_app");
    let output = sous_tests::cli::sous_release()
        .args([
            "push",
            "--name",
            "my-app",
            "--namespace",
            NAMESPACE,
            "--module",
        ])
        .arg(&module)
        .args(["--parent-kind", "example.sous.dev/v1/MyApp"])
        .args([
            "--child-kind",
            "apps/v1/Deployment",
            "--child-kind",
            "v1/Service",
        ])
        .env("KUBECONFIG", bench.cluster.kubeconfig_path())
        .output()?;
    if !output.status.success() {
        bail!(
            "sous push failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

async fn wait_reconciler_running(bench: &Bench, timeout: Duration) -> anyhow::Result<()> {
    let resource = kube::api::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "sous.dev",
        "v1alpha1",
        "Reconciler",
    ));
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(bench.client.clone(), NAMESPACE, &resource);
    let started = Instant::now();
    while started.elapsed() < timeout {
        let reconciler = api.get("my-app").await?;
        let ready = reconciler.data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the Reconciler was not Ready after {timeout:?}")
}

fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `sous run`, killed when dropped.
struct Host {
    child: Child,
}

impl Host {
    fn start(bench: &Bench, addr: SocketAddr) -> anyhow::Result<Self> {
        let cache = std::env::temp_dir().join(format!("sous-scale-cache-{}", std::process::id()));
        let child = sous_tests::cli::sous_release()
            .args([
                "run",
                "--identity",
                "scale",
                "--health-addr",
                &addr.to_string(),
                "--cache-dir",
            ])
            .arg(cache)
            .env("KUBECONFIG", bench.cluster.kubeconfig_path())
            .env("SOUS_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error when the host has exited.
    fn check(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("sous run exited ({status})"),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Gone already is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
