//! What the host tells its operators: logs, metrics and health endpoints.

mod health;
mod metrics;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub use health::{Health, serve};
pub use metrics::{ChildWrite, Metrics, Outcome, QueueGuard};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Sends `tracing` events to stderr in `format`, filtered by the `SOUS_LOG`
/// environment variable (e.g. `info`, `sous=debug`; default `warn`).
/// Call once, at start-up.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SOUS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
