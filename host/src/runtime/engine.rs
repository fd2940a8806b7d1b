//! The process-wide wasmtime `Engine`: compiler settings, the pooling allocator and the epoch ticker.

use std::thread;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a call overruns its deadline by at most this much.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the engine allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Pre-reserve this many instance slots (memories, tables, stacks) and reuse
    /// them across calls, with copy-on-write memory images. `None` allocates on
    /// demand for each call, which is slower but reserves nothing up front.
    pub pool_slots: Option<u32>,
    /// The largest linear memory any call may use; pool slots are sized for it.
    pub max_memory_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            pool_slots: Some(16),
            max_memory_bytes: super::Limits::default().max_memory_bytes,
        }
    }
}

/// Core instances, memories and tables one component may have. Interpreted
/// guests (Python, JavaScript) link several core modules into one component.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MEMORIES_PER_COMPONENT: u32 = 8;
const TABLES_PER_COMPONENT: u32 = 32;

/// Bytes of each pooled memory and table kept resident between calls (reset
/// in place rather than decommitted): enough for a small guest's stack, data
/// and heap, and for its function tables.
const KEEP_RESIDENT_MEMORY: usize = 2 << 20;
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

/// Builds the engine and starts the thread that drives epoch deadlines.
///
/// The ticker holds only a weak reference: it ends once the last clone of the
/// engine is dropped.
pub fn build(options: &EngineOptions) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .wasm_component_model(true)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(20));
    if let Some(slots) = options.pool_slots {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(
            slots,
            options.max_memory_bytes,
        )));
    }
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine)?;
    Ok(engine)
}

fn pooling(slots: u32, max_memory_bytes: usize) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots * MEMORIES_PER_COMPONENT)
        .total_tables(slots * TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(max_memory_bytes)
        // Reset a reused slot in place instead of returning its pages to the
        // kernel after every call: `madvise` + page faults on the next call
        // cost more than the guest's whole reconcile. PAGEMAP_SCAN (Linux
        // 6.7+, ignored elsewhere) finds the pages a call actually dirtied, so
        // only those are copied back from the image or zeroed.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
        .table_keep_resident(KEEP_RESIDENT_TABLE);
    pool
}

fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("sous-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}
