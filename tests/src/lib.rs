//! Helpers shared by the integration tests, the e2e tests and the benchmarks.

pub mod attacks;
pub mod chart;
pub mod cli;
pub mod envtest;
pub mod fixtures;
pub mod guests;
pub mod host;
pub mod http;
pub mod image;
