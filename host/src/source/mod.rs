//! Module source: a reconciler's WebAssembly module read from the
//! `binaryData` of one or more ConfigMaps (ordered parts, optionally zstd- or
//! gzip-compressed, optionally pinned by sha256), and the packing that
//! `sous push` does in the other direction.

mod assemble;
mod config_maps;
mod decode;
mod error;
mod pack;

pub use assemble::{ModuleBytes, assemble};
pub use config_maps::{config_map_names, from_config_maps};
pub use decode::MAX_MODULE_BYTES;
pub use error::SourceError;
pub use pack::{COMPRESSION_LEVEL, MAX_PART_BYTES, pack};
