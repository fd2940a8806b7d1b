//! The sandboxed WebAssembly runtime: one engine, modules compiled once per
//! digest, a fresh store per call, limits on every call.

mod bindings;
mod call;
mod engine;
mod error;
mod limits;
mod module;
mod precompiled;
mod response;
mod sandbox;
mod world;

pub use bindings::current::sous::reconciler::types::{RelatedRequest, Request};
pub use engine::{EPOCH_TICK, EngineOptions};
pub use error::{CallError, LoadError};
pub use limits::Limits;
pub use module::{Digest, Loaded, LoadedModule, Origin, Runtime, RuntimeOptions};
pub use response::{Desired, Finalized, GuestEvent};
pub use sandbox::{CallContext, GUEST_OUTPUT_LIMIT};
pub use world::WorldVersion;
