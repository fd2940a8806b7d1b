//! What one reconcile costs in the sandbox, beside the two floors it competes with.
//!
//! All figures come from one run of one process, side by side:
//! - the `my-app` guest: compile time, precompiled-load time, and per call
//!   (fresh instance from the shared `InstancePre`, `reconcile`, JSON both
//!   ways) with and without the pooling allocator;
//! - the same transform as native Rust in this process (JSON in, JSON out);
//! - the same transform behind a native HTTP/1.1 webhook on loopback, called
//!   with a keep-alive client: the floor of a webhook design (a real cluster
//!   adds the pod network and TLS on top). The server runs on a thread of its
//!   own, as another process would; `ratio webhook/wasm` uses that figure.
//!   A second row serves it from the client's own thread: no thread wake-ups,
//!   only HTTP, loopback TCP and JSON. On an idle VM the wake-ups dominate
//!   (and differ most from machine to machine), so the two rows bracket it.
//!
//! Then the same `my-app` written in every SDK language (`languages.rs`):
//! size raw and as stored (zstd, split into ConfigMaps), compile time,
//! precompiled-load time and per-call latency, as a Markdown table.
//!
//! The per-call measurements are interleaved in rounds, so that whatever else
//! the machine is doing weighs on all of them alike.
//!
//! Run with `cargo bench -p sous --bench guest_call`; the other languages'
//! components are built by their `guests/<lang>/build` scripts on first use.

mod languages;
mod measure;
mod webhook;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sous::render::{self, Observed};
use sous::runtime::{
    CallContext, EngineOptions, Limits, LoadedModule, Origin, Runtime, RuntimeOptions,
};
use sous_guest::bindings::sous::reconciler::types as wit;

use measure::{Plan, measure_interleaved, median_of, ms, us};
use webhook::{Server, WebhookClient};

/// Calls of the my-app paths against each other.
const PLAN: Plan = Plan {
    warmup: 300,
    iterations: 2_000,
    rounds: 20,
    rewarm: 10,
};
/// Loads timed for the compile and precompiled-load medians.
const LOADS: usize = 3;
/// Pool slots of the pooling allocator.
const POOL_SLOTS: u32 = 16;

fn main() {
    let bytes = sous_tests::guests::guest_bytes("my_app");
    let observed = observed();

    let loads = LoadTimes::of(&bytes);

    let pooling_runtime = runtime(Some(POOL_SLOTS), None);
    let pooling = pooling_runtime
        .load(&bytes)
        .expect("my-app compiles")
        .module;
    let on_demand_runtime = runtime(None, None);
    let on_demand = on_demand_runtime
        .load(&bytes)
        .expect("my-app compiles")
        .module;
    let mut webhook = WebhookClient::start(Server::OwnThread);
    let mut webhook_one_thread = WebhookClient::start(Server::ClientThread);

    // Every path must compute the same answer before its speed means anything.
    let expected = wasm_call(&pooling, &observed);
    assert_eq!(wasm_call(&on_demand, &observed), expected);
    assert_eq!(native_call(&observed), expected);
    assert_eq!(webhook.call(&observed), expected);
    assert_eq!(webhook_one_thread.call(&observed), expected);

    let [
        wasm_pooling,
        wasm_on_demand,
        native,
        webhook,
        webhook_one_thread,
    ] = measure_interleaved(
        &PLAN,
        [
            &mut || wasm_call(&pooling, &observed),
            &mut || wasm_call(&on_demand, &observed),
            &mut || native_call(&observed),
            &mut || webhook.call(&observed),
            &mut || webhook_one_thread.call(&observed),
        ],
    );

    println!("my-app component: {} bytes", bytes.len());
    println!(
        "compile (Cranelift, no cache):  {:>9.2} ms",
        ms(loads.compile)
    );
    println!(
        "precompiled load (new Runtime): {:>9.3} ms",
        ms(loads.precompiled)
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10}",
        "per reconcile", "median µs", "p99 µs"
    );
    for (name, latencies) in [
        ("wasm, pooling allocator", &wasm_pooling),
        ("wasm, on-demand allocator", &wasm_on_demand),
        ("native Rust, in process", &native),
        ("native webhook, loopback keep-alive", &webhook),
        ("  same, server on the client's thread", &webhook_one_thread),
    ] {
        println!(
            "{name:<44} {:>10.1} {:>10.1}",
            us(latencies.median),
            us(latencies.p99)
        );
    }
    println!();
    println!(
        "ratio webhook/wasm: {:.2}",
        webhook.median.as_secs_f64() / wasm_pooling.median.as_secs_f64()
    );
    println!(
        "ratio wasm/native: {:.2}",
        wasm_pooling.median.as_secs_f64() / native.median.as_secs_f64()
    );

    languages::table(&observed, &expected);
}

/// How long a module takes to become callable.
struct LoadTimes {
    /// Compiling with Cranelift, no cache.
    compile: Duration,
    /// Loading the precompiled artifact from disk into a new runtime.
    precompiled: Duration,
}

impl LoadTimes {
    /// The medians of [`LOADS`] loads of `bytes` each way.
    fn of(bytes: &[u8]) -> Self {
        let compile = median_of(LOADS, || {
            let loaded = runtime(Some(POOL_SLOTS), None)
                .load(bytes)
                .expect("the module compiles");
            assert_eq!(loaded.origin, Origin::Compiled);
            loaded.elapsed
        });
        let cache = tempfile::tempdir().expect("temporary cache dir");
        let stored = runtime(Some(POOL_SLOTS), Some(cache.path()))
            .load(bytes)
            .expect("the module compiles");
        assert_eq!(stored.origin, Origin::Compiled);
        let precompiled = median_of(LOADS, || {
            let loaded = runtime(Some(POOL_SLOTS), Some(cache.path()))
                .load(bytes)
                .expect("the module loads");
            assert_eq!(loaded.origin, Origin::Precompiled);
            loaded.elapsed
        });
        Self {
            compile,
            precompiled,
        }
    }
}

/// A MyApp parent with one observed Deployment, as the host would see it.
fn observed() -> Observed {
    Observed {
        parent: json!({
            "apiVersion": "example.sous.dev/v1",
            "kind": "MyApp",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "6f1b2c1e-8d4a-4c55-9a36-0d2f5a7e1c01",
                "generation": 4,
            },
            "spec": {"replicas": 3, "image": "nginx:1.27", "port": 8080},
        }),
        children: vec![json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "0e4d0c7c-1f51-4cbb-8a0c-5b3b1f7f0a11",
            },
            "spec": {"replicas": 3},
            "status": {
                "replicas": 3,
                "readyReplicas": 2,
                "updatedReplicas": 3,
                "availableReplicas": 2,
            },
        })],
        related: Vec::new(),
        config: None,
        desired: None,
    }
}

pub(crate) fn runtime(pool_slots: Option<u32>, cache_dir: Option<&Path>) -> Runtime {
    Runtime::new(&RuntimeOptions {
        engine: EngineOptions {
            pool_slots,
            ..EngineOptions::default()
        },
        cache_dir: cache_dir.map(Into::into),
    })
    .expect("runtime")
}

/// What every path answers, compared before measuring: the children and the status.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    children: Vec<Value>,
    status: Option<Value>,
}

/// Values -> request text -> guest -> response values (parsed by the runtime).
pub(crate) fn wasm_call(module: &LoadedModule, observed: &Observed) -> Answer {
    let context = CallContext {
        reconciler: "my-app".into(),
        parent: "shop/web".into(),
    };
    let request = render::request("my-app", observed);
    let desired = module
        .reconcile(&request, &Limits::default(), context)
        .expect("my-app reconciles");
    Answer {
        children: desired.children,
        status: desired.status,
    }
}

/// The same path natively: values -> request text -> transform -> response values.
fn native_call(observed: &Observed) -> Answer {
    let request = render::request("my-app", observed);
    let raw = wit::Request {
        reconciler: request.reconciler,
        parent: request.parent,
        children: request.children,
        related: request.related,
        config: request.config,
        desired: request.desired,
    };
    let response = sous_guest::run_reconcile::<my_app::MyApp>(raw).expect("my-app reconciles");
    let parse = |text: &str| serde_json::from_str::<Value>(text).expect("JSON from my-app");
    Answer {
        children: response.children.iter().map(|c| parse(c)).collect(),
        status: response.status.as_deref().map(parse),
    }
}
