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
//! The per-call measurements are interleaved in rounds, so that whatever else
//! the machine is doing weighs on all of them alike.
//!
//! Run with `cargo bench -p sous --bench guest_call`.

use std::hint::black_box;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request as HttpRequest, Response as HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sous::render::{self, Observed};
use sous::runtime::{
    CallContext, EngineOptions, Limits, LoadedModule, Origin, Runtime, RuntimeOptions,
};
use sous_guest::bindings::sous::reconciler::types as wit;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Calls of each kind before measuring.
const WARMUP: usize = 300;
/// Measured calls of each kind, in `ROUNDS` interleaved batches.
const ITERATIONS: usize = 2_000;
const ROUNDS: usize = 20;
/// Untimed calls before each batch of a round.
const REWARM: usize = 10;
/// Loads timed for the compile and precompiled-load medians.
const LOADS: usize = 3;
/// Pool slots of the pooling allocator.
const POOL_SLOTS: u32 = 16;

fn main() {
    let bytes = sous_tests::guests::guest_bytes("my_app");
    let observed = observed();

    let compile = median_of(LOADS, || {
        let loaded = runtime(Some(POOL_SLOTS), None)
            .load(&bytes)
            .expect("my-app compiles");
        assert_eq!(loaded.origin, Origin::Compiled);
        loaded.elapsed
    });
    let cache = tempfile::tempdir().expect("temporary cache dir");
    let stored = runtime(Some(POOL_SLOTS), Some(cache.path()))
        .load(&bytes)
        .expect("my-app compiles");
    assert_eq!(stored.origin, Origin::Compiled);
    let precompiled = median_of(LOADS, || {
        let loaded = runtime(Some(POOL_SLOTS), Some(cache.path()))
            .load(&bytes)
            .expect("my-app loads");
        assert_eq!(loaded.origin, Origin::Precompiled);
        loaded.elapsed
    });

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
    ] = measure_interleaved([
        &mut || wasm_call(&pooling, &observed),
        &mut || wasm_call(&on_demand, &observed),
        &mut || native_call(&observed),
        &mut || webhook.call(&observed),
        &mut || webhook_one_thread.call(&observed),
    ]);

    println!("my-app component: {} bytes", bytes.len());
    println!("compile (Cranelift, no cache):  {:>9.2} ms", ms(compile));
    println!(
        "precompiled load (new Runtime): {:>9.3} ms",
        ms(precompiled)
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
    }
}

fn runtime(pool_slots: Option<u32>, cache_dir: Option<&Path>) -> Runtime {
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
struct Answer {
    children: Vec<Value>,
    status: Option<Value>,
}

/// Values -> request text -> guest -> response values (parsed by the runtime).
fn wasm_call(module: &LoadedModule, observed: &Observed) -> Answer {
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
    };
    let response = sous_guest::run_reconcile::<my_app::MyApp>(raw).expect("my-app reconciles");
    let parse = |text: &str| serde_json::from_str::<Value>(text).expect("JSON from my-app");
    Answer {
        children: response.children.iter().map(|c| parse(c)).collect(),
        status: response.status.as_deref().map(parse),
    }
}

/// The webhook's request body. Objects stay raw text until the transform
/// parses them, exactly as in the other two paths.
#[derive(Deserialize)]
struct WebhookBody<'a> {
    #[serde(borrow)]
    parent: &'a RawValue,
    #[serde(borrow)]
    children: Vec<&'a RawValue>,
    #[serde(borrow)]
    related: Vec<&'a RawValue>,
}

/// The webhook's answer, as the client reads it.
#[derive(Deserialize)]
struct WebhookAnswer {
    children: Vec<Value>,
    status: Option<Value>,
}

async fn webhook(
    request: HttpRequest<Incoming>,
) -> Result<HttpResponse<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let body: WebhookBody = serde_json::from_slice(&body).expect("webhook body");
    let raw = wit::Request {
        reconciler: "my-app".into(),
        parent: body.parent.get().to_string(),
        children: body.children.iter().map(|c| c.get().to_string()).collect(),
        related: body.related.iter().map(|r| r.get().to_string()).collect(),
        config: None,
    };
    let response = sous_guest::run_reconcile::<my_app::MyApp>(raw).expect("my-app reconciles");
    // The transform's objects are JSON text already: splice them in.
    let answer = format!(
        r#"{{"children":[{}],"status":{}}}"#,
        response.children.join(","),
        response.status.as_deref().unwrap_or("null")
    );
    let mut answer = HttpResponse::new(Full::new(Bytes::from(answer)));
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(answer)
}

/// A keep-alive HTTP/1.1 connection to the webhook, served on loopback from
/// a thread of its own.
struct WebhookClient {
    runtime: tokio::runtime::Runtime,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl WebhookClient {
    fn start(server: Server) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback listener");
        let address = listener.local_addr().expect("listener address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let runtime = single_thread_runtime();
        match server {
            Server::OwnThread => {
                std::thread::spawn(move || single_thread_runtime().block_on(serve(listener)));
            }
            Server::ClientThread => {
                runtime.spawn(serve(listener));
            }
        }
        let sender = runtime.block_on(async {
            let stream = TcpStream::connect(address)
                .await
                .expect("connect to the webhook");
            stream.set_nodelay(true).expect("nodelay");
            let (sender, connection) = hyper::client::conn::http1::handshake(Io(stream))
                .await
                .expect("HTTP handshake");
            tokio::spawn(connection);
            sender
        });
        Self { runtime, sender }
    }

    /// Values -> JSON body -> POST -> JSON answer -> values.
    fn call(&mut self, observed: &Observed) -> Answer {
        let sender = &mut self.sender;
        self.runtime.block_on(async {
            let body = json!({
                "parent": observed.parent,
                "children": observed.children,
                "related": observed.related,
            });
            let request = HttpRequest::post("/reconcile")
                .header(hyper::header::HOST, "127.0.0.1")
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::to_vec(&body).expect("JSON body"),
                )))
                .expect("HTTP request");
            let response = sender.send_request(request).await.expect("webhook answers");
            assert!(response.status().is_success(), "{}", response.status());
            let body = response
                .into_body()
                .collect()
                .await
                .expect("webhook body")
                .to_bytes();
            let answer: WebhookAnswer = serde_json::from_slice(&body).expect("JSON answer");
            Answer {
                children: answer.children,
                status: answer.status,
            }
        })
    }
}

/// Where the webhook server runs.
enum Server {
    /// A thread of its own, as a separate process would: every request
    /// wakes the server and every answer wakes the client.
    OwnThread,
    /// The client's thread, on the client's runtime: no thread wake-ups,
    /// only HTTP, loopback TCP and JSON (the floor of the floor).
    ClientThread,
}

/// Accepts connections on `listener` and serves the webhook on each.
async fn serve(listener: std::net::TcpListener) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), hyper::service::service_fn(webhook)),
        );
    }
}

fn single_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime")
}

/// A tokio `TcpStream` as hyper's I/O traits (what `hyper_util::rt::TokioIo`
/// does, without the dependency).
struct Io(TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0; 16 << 10];
        let len = buf.remaining().min(chunk.len());
        let mut read = tokio::io::ReadBuf::new(&mut chunk[..len]);
        match Pin::new(&mut self.0).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(read.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Median and 99th percentile of one measured operation.
struct Latencies {
    median: Duration,
    p99: Duration,
}

/// Warms every operation up, then times `ITERATIONS` calls of each, in
/// `ROUNDS` rounds that take turns.
fn measure_interleaved<const N: usize>(
    mut operations: [&mut dyn FnMut() -> Answer; N],
) -> [Latencies; N] {
    for operation in &mut operations {
        for _ in 0..WARMUP {
            black_box(operation());
        }
    }
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(ITERATIONS));
    for _ in 0..ROUNDS {
        for (operation, samples) in operations.iter_mut().zip(&mut samples) {
            // A few untimed calls first: switching between operations
            // leaves caches cold, which would otherwise show in the p99.
            for _ in 0..REWARM {
                black_box(operation());
            }
            for _ in 0..ITERATIONS / ROUNDS {
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

fn median_of(runs: usize, mut operation: impl FnMut() -> Duration) -> Duration {
    let mut samples: Vec<Duration> = (0..runs).map(|_| operation()).collect();
    samples.sort();
    samples[runs / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
