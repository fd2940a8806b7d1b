//! Log records, forwarded to the host's logs with the reconciler's and parent's names.
//!
//! Outside WebAssembly (native tests and benchmarks) records go to stderr.

use crate::bindings::sous::reconciler::log::Level;

fn write(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    crate::bindings::sous::reconciler::log::log(level, message);
    #[cfg(not(target_family = "wasm"))]
    eprintln!("{level:?}: {message}");
}

/// Detail useful while developing a reconciler.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Normal operation.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Something unexpected that the reconciler recovered from.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Something failed.
pub fn error(message: &str) {
    write(Level::Error, message);
}
