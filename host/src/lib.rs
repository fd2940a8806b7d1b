//! Sous: Kubernetes operators as uploadable WebAssembly components.
//!
//! The host calls a guest component's `reconcile(parent, observed) -> desired`
//! (the `sous:reconciler` WIT world in `wit/`) in a sandbox, validates the
//! answer, and (in a cluster) applies it. This crate holds the runtime, the
//! validation and the `sous` command line.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod inputs;
pub mod leader;
pub mod operator;
pub mod policy;
pub mod recovery;
pub mod registry;
pub mod related;
pub mod render;
pub mod runtime;
pub mod scaffold;
pub mod source;
pub mod telemetry;
pub mod tenancy;
pub mod validate;
