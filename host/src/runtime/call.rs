//! One guest call: a fresh store with its limits, instantiate from the shared
//! `InstancePre`, call the export, and name whatever went wrong.

use wasmtime::{Store, Trap, WasmBacktrace};

use super::bindings::current::sous::reconciler::types::{self as wit, Request};
use super::engine::EPOCH_TICK;
use super::error::CallError;
use super::limits::{GuestLimiter, Limits, MemoryLimitExceeded};
use super::module::LoadedModule;
use super::response::{self, Desired, Finalized};
use super::sandbox::{CallContext, GuestState};

/// Named guest frames kept in a trap report (frames without a name, as in a
/// stripped module, are left out: an index alone helps nobody).
const BACKTRACE_FRAMES: usize = 8;

impl LoadedModule {
    /// Calls `reconcile` for one parent under `limits`.
    pub fn reconcile(
        &self,
        request: &Request,
        limits: &Limits,
        context: CallContext,
    ) -> Result<Desired, CallError> {
        let answer = self.call(limits, context, |store| self.pre.reconcile(store, request))?;
        response::desired(answer, limits)
    }

    /// Calls `finalize` for one parent being deleted, under `limits`.
    pub fn finalize(
        &self,
        request: &Request,
        limits: &Limits,
        context: CallContext,
    ) -> Result<Finalized, CallError> {
        let answer = self.call(limits, context, |store| self.pre.finalize(store, request))?;
        response::finalized(answer, limits)
    }

    fn call<T>(
        &self,
        limits: &Limits,
        context: CallContext,
        export: impl FnOnce(&mut Store<GuestState>) -> wasmtime::Result<Result<T, wit::Error>>,
    ) -> Result<T, CallError> {
        let mut store = Store::new(
            self.pre.engine(),
            GuestState::new(context, GuestLimiter::new(limits.max_memory_bytes)),
        );
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| CallError::Instantiate(e.to_string()))?;
        // One extra tick: the current epoch may be about to end.
        let ticks = limits.deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1;
        store.set_epoch_deadline(ticks);

        let outcome = export(&mut store);
        let guest_output = store.data().drain_output();
        match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(wit::Error::Invalid(message))) => Err(CallError::Invalid(message)),
            Ok(Err(wit::Error::Transient(message))) => Err(CallError::Transient(message)),
            Err(error) => Err(classify(&error, limits, guest_output)),
        }
    }
}

/// Maps a wasmtime error to the limit or fault behind it.
fn classify(error: &wasmtime::Error, limits: &Limits, guest_output: String) -> CallError {
    if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimitExceeded {
            desired: exceeded.desired,
            limit: exceeded.limit,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel { fuel: limits.fuel },
        Some(Trap::Interrupt) => CallError::DeadlineExceeded {
            deadline: limits.deadline,
        },
        Some(trap) => CallError::Trap {
            message: trap
                .to_string()
                .trim_start_matches("wasm trap: ")
                .to_string(),
            guest_output,
            backtrace: backtrace(error),
        },
        // Not a trap: instantiation failed before any guest code ran
        // (for example, no free slot in the pooling allocator).
        None => CallError::Instantiate(format!("{error:#}")),
    }
}

fn backtrace(error: &wasmtime::Error) -> Vec<String> {
    error
        .downcast_ref::<WasmBacktrace>()
        .map(|trace| {
            trace
                .frames()
                .iter()
                .filter_map(|frame| frame.func_name())
                .take(BACKTRACE_FRAMES)
                .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
                .collect()
        })
        .unwrap_or_default()
}
