//! Per-call resource limits and the `ResourceLimiter` that enforces memory and tables.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Bounds on one guest call. Exceeding any of them fails that call only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel units (roughly WebAssembly instructions) one call may consume.
    pub fuel: u64,
    /// Wall-clock time one call may take.
    pub deadline: Duration,
    /// Bytes of linear memory (all memories of the instance together).
    pub max_memory_bytes: usize,
    /// Bytes of the whole response: every child, the status and the events.
    pub max_response_bytes: usize,
    /// Number of desired children in one response.
    pub max_objects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            deadline: Duration::from_secs(2),
            max_memory_bytes: 256 << 20,
            max_response_bytes: 16 << 20,
            max_objects: 1_000,
        }
    }
}

/// Table elements an instance may hold; generous for interpreters, bounded for the host.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Raised from inside the guest when it tries to grow its memory past the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory growth to {desired} bytes exceeds the limit of {limit} bytes")]
pub struct MemoryLimitExceeded {
    /// Total bytes the guest asked for.
    pub desired: usize,
    /// The limit in force.
    pub limit: usize,
}

/// Enforces [`Limits::max_memory_bytes`] across all memories of one store.
///
/// Unlike wasmtime's `StoreLimits`, a refused growth is an error carrying
/// [`MemoryLimitExceeded`], so the host can tell a memory bomb from any other
/// trap instead of seeing the guest's own out-of-memory abort.
#[derive(Debug)]
pub struct GuestLimiter {
    limit: usize,
    used: usize,
}

impl GuestLimiter {
    /// A limiter allowing `limit` bytes of linear memory in total.
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used - current.min(self.used) + desired;
        if total > self.limit {
            return Err(MemoryLimitExceeded {
                desired: total,
                limit: self.limit,
            }
            .into());
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_within_the_limit_is_allowed_and_accumulates_across_memories() {
        let mut limiter = GuestLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        // A second memory of 40 bytes brings the total exactly to the limit.
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        let error = limiter.memory_growing(0, 1, None).unwrap_err();
        let exceeded = error.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!((exceeded.desired, exceeded.limit), (101, 100));
    }

    #[test]
    fn growth_past_the_limit_is_an_error() {
        let mut limiter = GuestLimiter::new(100);
        assert!(limiter.memory_growing(0, 50, None).unwrap());
        assert!(limiter.memory_growing(50, 100, None).unwrap());
        assert!(limiter.memory_growing(100, 101, None).is_err());
    }
}
