//! What can go wrong loading a module or calling a guest, in words a user can act on.

use std::time::Duration;

/// A module could not be turned into a callable reconciler.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Zero bytes.
    #[error("the module is empty")]
    Empty,
    /// The bytes do not start with the WebAssembly magic number.
    #[error("not a WebAssembly file (it does not start with `\\0asm`)")]
    NotWasm,
    /// A core module, where a component is needed.
    #[error(
        "a core WebAssembly module, not a component; build for `wasm32-wasip2` or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// The component does not compile: truncated, corrupt or using unsupported features.
    #[error("not a valid component: {0}")]
    Compile(String),
    /// The component is valid but does not implement the `sous:reconciler` world.
    #[error("does not implement the `sous:reconciler/reconciler` world: {0}")]
    WrongWorld(String),
    /// The engine could not be set up.
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
}

/// One guest call failed. Each variant fails that call only.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The guest used all its fuel (CPU budget).
    #[error("guest ran out of fuel after {fuel} units; raise the fuel limit or fix the loop")]
    OutOfFuel {
        /// The fuel limit in force.
        fuel: u64,
    },
    /// The guest ran past its wall-clock deadline.
    #[error(
        "guest exceeded its deadline of {} ms; raise the timeout or fix the loop",
        .deadline.as_millis()
    )]
    DeadlineExceeded {
        /// The deadline in force.
        deadline: Duration,
    },
    /// The guest tried to grow its linear memory past the limit.
    #[error(
        "guest tried to grow its memory to {desired} bytes, over the limit of {limit} bytes; raise the memory limit or use less"
    )]
    MemoryLimitExceeded {
        /// Bytes asked for, all memories together.
        desired: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The guest trapped: a panic, an `unreachable`, an out-of-bounds access...
    #[error("guest trapped: {message}{}", detail(.guest_output, .backtrace))]
    Trap {
        /// What wasmtime reported.
        message: String,
        /// The tail of the guest's stderr (a panic message, typically).
        guest_output: String,
        /// The innermost guest frames, innermost first.
        backtrace: Vec<String>,
    },
    /// The response is larger than allowed.
    #[error("response of {bytes} bytes exceeds the limit of {limit} bytes")]
    ResponseTooLarge {
        /// Size of the response.
        bytes: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More desired objects than allowed.
    #[error(
        "response has {count} desired objects, over the limit of {limit}; raise the object limit if this is intended"
    )]
    TooManyObjects {
        /// Number of desired children.
        count: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Part of the response is not what the contract promises.
    #[error("response is malformed: {0}")]
    MalformedResponse(String),
    /// The guest said the parent is invalid; no retry until the parent changes.
    #[error("guest rejected the parent as invalid: {0}")]
    Invalid(String),
    /// The guest reported a temporary failure; retried with backoff.
    #[error("guest reported a transient error: {0}")]
    Transient(String),
    /// The host could not instantiate the guest (for example, every pool slot is busy).
    #[error("cannot instantiate the guest: {0}")]
    Instantiate(String),
}

fn detail(guest_output: &str, backtrace: &[String]) -> String {
    let mut detail = String::new();
    if !guest_output.is_empty() {
        let output = guest_output
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        detail.push_str(&format!("; guest stderr: {output}"));
    }
    // A panic message already says where; the frames matter when it is all there is.
    if guest_output.is_empty() && !backtrace.is_empty() {
        detail.push_str(&format!("; guest backtrace: {}", backtrace.join(" <- ")));
    }
    detail
}

impl CallError {
    /// A short UpperCamelCase reason, for status conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::OutOfFuel { .. } => "OutOfFuel",
            Self::DeadlineExceeded { .. } => "DeadlineExceeded",
            Self::MemoryLimitExceeded { .. } => "MemoryLimitExceeded",
            Self::Trap { .. } => "GuestTrapped",
            Self::ResponseTooLarge { .. } => "ResponseTooLarge",
            Self::TooManyObjects { .. } => "TooManyObjects",
            Self::MalformedResponse(_) => "MalformedResponse",
            Self::Invalid(_) => "InvalidParent",
            Self::Transient(_) => "TransientError",
            Self::Instantiate(_) => "InstantiateFailed",
        }
    }

    /// Whether calling again, unchanged, could succeed. Only a transient guest
    /// error or a busy host can; every other failure repeats until the parent
    /// or the module changes.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::Instantiate(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_error_says_what_happened_and_has_its_own_reason() {
        let cases = [
            (
                CallError::OutOfFuel { fuel: 10 },
                "ran out of fuel after 10 units",
                "OutOfFuel",
            ),
            (
                CallError::DeadlineExceeded {
                    deadline: Duration::from_millis(250),
                },
                "exceeded its deadline of 250 ms",
                "DeadlineExceeded",
            ),
            (
                CallError::MemoryLimitExceeded {
                    desired: 20,
                    limit: 10,
                },
                "memory to 20 bytes, over the limit of 10 bytes",
                "MemoryLimitExceeded",
            ),
            (
                CallError::Trap {
                    message: "wasm `unreachable` instruction executed".into(),
                    guest_output: "panicked at src/lib.rs:1:1:\nboom".into(),
                    backtrace: vec!["inner".into(), "outer".into()],
                },
                "guest trapped: wasm `unreachable` instruction executed; guest stderr: panicked at src/lib.rs:1:1: boom",
                "GuestTrapped",
            ),
            (
                CallError::ResponseTooLarge { bytes: 5, limit: 4 },
                "response of 5 bytes exceeds the limit of 4 bytes",
                "ResponseTooLarge",
            ),
            (
                CallError::TooManyObjects { count: 5, limit: 4 },
                "5 desired objects, over the limit of 4",
                "TooManyObjects",
            ),
            (
                CallError::MalformedResponse("child #1 is not JSON".into()),
                "response is malformed: child #1 is not JSON",
                "MalformedResponse",
            ),
            (
                CallError::Invalid("bad distro".into()),
                "invalid: bad distro",
                "InvalidParent",
            ),
            (
                CallError::Transient("later".into()),
                "transient error: later",
                "TransientError",
            ),
            (
                CallError::Instantiate("pool full".into()),
                "cannot instantiate the guest: pool full",
                "InstantiateFailed",
            ),
        ];
        let mut reasons = std::collections::HashSet::new();
        for (error, message, reason) in cases {
            let text = error.to_string();
            assert!(text.contains(message), "{text:?} lacks {message:?}");
            assert!(!text.contains('\n'), "{text:?} is not one line");
            assert_eq!(error.reason(), reason);
            assert!(reasons.insert(reason), "reason {reason} used twice");
        }
    }

    #[test]
    fn a_trap_without_guest_output_shows_the_backtrace() {
        let error = CallError::Trap {
            message: "integer divide by zero".into(),
            guest_output: String::new(),
            backtrace: vec!["divide".into(), "reconcile".into()],
        };
        assert_eq!(
            error.to_string(),
            "guest trapped: integer divide by zero; guest backtrace: divide <- reconcile"
        );
    }

    #[test]
    fn only_transient_and_busy_errors_are_retried_unchanged() {
        assert!(CallError::Transient("x".into()).is_retryable());
        assert!(CallError::Instantiate("x".into()).is_retryable());
        assert!(!CallError::Invalid("x".into()).is_retryable());
        assert!(!CallError::OutOfFuel { fuel: 1 }.is_retryable());
    }

    #[test]
    fn load_errors_name_the_remedy() {
        assert!(LoadError::CoreModule.to_string().contains("wasm32-wasip2"));
        assert!(LoadError::NotWasm.to_string().contains("\\0asm"));
        assert!(
            LoadError::WrongWorld("missing `reconcile`".into())
                .to_string()
                .contains("sous:reconciler/reconciler")
        );
    }
}
