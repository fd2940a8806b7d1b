//! Every SDK language's `my-app`, side by side: its size raw and as the host
//! stores it (zstd, split into ConfigMaps by `sous push`), compile and
//! precompiled-load times, and per-call latency, printed as a Markdown table.

use sous::render::Observed;
use sous::source::{MAX_PART_BYTES, pack};

use crate::measure::{Plan, measure_interleaved, ms, us};
use crate::{Answer, LoadTimes, POOL_SLOTS, runtime, wasm_call};

/// The languages of the table; Rust's `my-app` is the reference answer.
const LANGUAGES: [&str; 5] = ["rust", "c", "go", "js", "python"];

/// Calls per language: fewer than for the my-app paths, as interpreted
/// guests take milliseconds per call.
const PLAN: Plan = Plan {
    warmup: 20,
    iterations: 400,
    rounds: 10,
    rewarm: 2,
};

/// The component of `language`'s `my-app`, built from `guests/`.
fn component(language: &str) -> Vec<u8> {
    match language {
        "rust" => sous_tests::guests::guest_bytes("my_app"),
        other => {
            let path = sous_tests::guests::component(other, "my-app");
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"))
        }
    }
}

/// Prints the table; every language must first give `expected`, Rust's answer.
pub fn table(observed: &Observed, expected: &Answer) {
    let components = LANGUAGES.map(component);
    let runtime = runtime(Some(POOL_SLOTS), None);
    let modules = components
        .each_ref()
        .map(|bytes| runtime.load(bytes).expect("my-app compiles").module);
    for (language, module) in LANGUAGES.iter().zip(&modules) {
        assert_eq!(
            &wasm_call(module, observed),
            expected,
            "{language}'s my-app answers like Rust's"
        );
    }
    let mut calls = modules
        .each_ref()
        .map(|module| move || wasm_call(module, observed));
    let latencies = measure_interleaved(
        &PLAN,
        calls
            .each_mut()
            .map(|call| call as &mut dyn FnMut() -> Answer),
    );

    println!();
    println!(
        "| language | component | stored (zstd) | ConfigMaps | compile | precompiled load | call median | call p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for ((language, bytes), latencies) in LANGUAGES.iter().zip(&components).zip(&latencies) {
        let parts = pack(bytes, MAX_PART_BYTES);
        let stored: usize = parts.iter().map(Vec::len).sum();
        let loads = LoadTimes::of(bytes);
        println!(
            "| {language} | {} | {} | {} | {:.0} ms | {:.1} ms | {:.0} µs | {:.0} µs |",
            kib(bytes.len()),
            kib(stored),
            parts.len(),
            ms(loads.compile),
            ms(loads.precompiled),
            us(latencies.median),
            us(latencies.p99),
        );
    }
}

/// A size in KiB, or MiB from 10 MiB up.
fn kib(bytes: usize) -> String {
    if bytes >= 10 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", bytes.div_ceil(1 << 10))
    }
}
