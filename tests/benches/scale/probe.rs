//! What the benchmark reads: a process's CPU time and peak memory from
//! `/proc`, counters from `/metrics` texts (the host's and the API
//! server's), and the moment every parent is Ready (from a watch).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use sous_tests::http::metric_sum;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of process `pid` so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / TICKS_PER_SECOND)
}

/// The peak resident set of process `pid`, in bytes (`VmHWM`).
pub fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Writes the API server has served for the benchmark's kinds (MyApps,
/// Deployments, Services), but the parents' creation: `(stored, dry runs)`.
pub async fn apiserver_writes(client: &kube::Client) -> (u64, u64) {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a request");
    let metrics = client
        .request_text(request)
        .await
        .expect("the API server's /metrics");
    let counted = |labels: &str, dry_run: bool| {
        let write = ["APPLY", "PATCH", "POST", "PUT", "DELETE"]
            .iter()
            .any(|verb| labels.contains(&format!("verb=\"{verb}\"")));
        let kind = ["myapps", "deployments", "services"]
            .iter()
            .any(|resource| labels.contains(&format!("resource=\"{resource}\"")));
        // Creating the parents is the user's doing, not the host's.
        let parent_creation =
            labels.contains("verb=\"POST\"") && labels.contains("resource=\"myapps\"");
        write && kind && !parent_creation && labels.contains("dry_run=\"All\"") == dry_run
    };
    (
        metric_sum(&metrics, "apiserver_request_total", |labels| {
            counted(labels, false)
        }),
        metric_sum(&metrics, "apiserver_request_total", |labels| {
            counted(labels, true)
        }),
    )
}

/// Whether `parent` is Ready for its current generation.
fn is_ready(parent: &DynamicObject) -> bool {
    let status = &parent.data["status"];
    let ready = status["conditions"].as_array().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    ready && status["observedGeneration"].as_i64() == parent.metadata.generation
}

/// Waits until `count` parents of `api` are Ready, by a watch; answers when
/// that happened, or `None` after `timeout`.
pub async fn all_ready(
    api: Api<DynamicObject>,
    count: usize,
    timeout: Duration,
) -> Option<Instant> {
    let mut ready = HashSet::new();
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
    let waited = tokio::time::timeout(timeout, async {
        while let Some(event) = events.next().await {
            let objects = match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    vec![object]
                }
                Ok(watcher::Event::Delete(object)) => {
                    ready.remove(&object.metadata.name);
                    Vec::new()
                }
                _ => Vec::new(),
            };
            for object in objects {
                if is_ready(&object) {
                    ready.insert(object.metadata.name.clone());
                } else {
                    ready.remove(&object.metadata.name);
                }
            }
            if ready.len() >= count {
                return Instant::now();
            }
        }
        Instant::now()
    })
    .await;
    waited.ok()
}
