//! The guest's world: WASI with no filesystem, network, environment or
//! arguments; its stdout, stderr and `log` calls forwarded to `tracing`.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::current::sous::reconciler::log::{self, Level};
use super::bindings::current::sous::reconciler::types;
use super::bindings::v0_1::sous::reconciler::{log as legacy_log, types as legacy_types};
use super::limits::GuestLimiter;

/// Bytes a guest may write to stdout and stderr in one call, and log through
/// `log`; past this, writes fail and log records are dropped.
pub const GUEST_OUTPUT_LIMIT: usize = 1 << 20;

/// Bytes of stderr kept to explain a trap (the tail, where a panic message is).
const STDERR_TAIL: usize = 2 << 10;

/// Who a call is for, so that every record the guest produces names it.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The Reconciler object's name.
    pub reconciler: Arc<str>,
    /// The parent as `namespace/name` (or `name` when cluster-scoped).
    pub parent: String,
}

/// The state of one store: one call of one guest.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: GuestLimiter,
    context: CallContext,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    logged_bytes: usize,
}

impl GuestState {
    /// A sandbox that grants clocks and random only.
    pub fn new(context: CallContext, limiter: GuestLimiter) -> Self {
        let stdout = MemoryOutputPipe::new(GUEST_OUTPUT_LIMIT);
        let stderr = MemoryOutputPipe::new(GUEST_OUTPUT_LIMIT);
        // The builder's defaults grant no preopened directories, no
        // environment variables, no arguments and deny every socket address.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            context,
            stdout,
            stderr,
            logged_bytes: 0,
        }
    }

    /// Forwards what the guest printed to the logs, line by line, and returns
    /// the tail of its stderr (where a panic message would be).
    pub fn drain_output(&self) -> String {
        let stdout = self.stdout.contents();
        for line in String::from_utf8_lossy(&stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            tracing::info!(target: "sous::guest", reconciler = %self.context.reconciler, parent = %self.context.parent, stream = "stdout", "{line}");
        }
        let stderr = self.stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr);
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            tracing::warn!(target: "sous::guest", reconciler = %self.context.reconciler, parent = %self.context.parent, stream = "stderr", "{line}");
        }
        let tail_start = stderr.len().saturating_sub(STDERR_TAIL);
        let tail_start = (tail_start..stderr.len())
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(stderr.len());
        stderr[tail_start..].trim().to_string()
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The `types` interface has no functions; the bindings still want a host for it.
impl types::Host for GuestState {}
impl legacy_types::Host for GuestState {}

/// 0.1.0's `log` is the current one under an older name.
impl legacy_log::Host for GuestState {
    fn log(&mut self, level: legacy_log::Level, message: String) {
        let level = match level {
            legacy_log::Level::Trace => Level::Trace,
            legacy_log::Level::Debug => Level::Debug,
            legacy_log::Level::Info => Level::Info,
            legacy_log::Level::Warn => Level::Warn,
            legacy_log::Level::Error => Level::Error,
        };
        log::Host::log(self, level, message);
    }
}

impl log::Host for GuestState {
    fn log(&mut self, level: Level, message: String) {
        self.logged_bytes += message.len();
        if self.logged_bytes > GUEST_OUTPUT_LIMIT {
            return;
        }
        let (reconciler, parent) = (&self.context.reconciler, &self.context.parent);
        match level {
            Level::Trace => {
                tracing::trace!(target: "sous::guest", %reconciler, %parent, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "sous::guest", %reconciler, %parent, "{message}")
            }
            Level::Info => tracing::info!(target: "sous::guest", %reconciler, %parent, "{message}"),
            Level::Warn => tracing::warn!(target: "sous::guest", %reconciler, %parent, "{message}"),
            Level::Error => {
                tracing::error!(target: "sous::guest", %reconciler, %parent, "{message}")
            }
        }
    }
}
