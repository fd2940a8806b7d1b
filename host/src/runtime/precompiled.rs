//! Compiled components kept on disk, so that a module is compiled once per
//! machine rather than once per process.
//!
//! A file is named by the module's sha256 and the engine's compatibility hash
//! (wasmtime version and every setting that affects generated code), so a new
//! host version or configuration never loads an artifact made for another.
//!
//! Artifacts are memory-mapped while in use. The host only ever replaces a
//! file by renaming a complete new one over it, which leaves existing
//! mappings intact; a file truncated in place by someone else while a host
//! maps it would fault that host, so the directory must be the host's own.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::module::Digest;

/// A directory of precompiled components. Writes go through a cap-std
/// handle confined to it; loads map the file into memory by path, so that a
/// large artifact is paged in lazily rather than read and copied.
pub struct PrecompiledDir {
    dir: Dir,
    path: PathBuf,
    engine_hash: String,
}

impl PrecompiledDir {
    /// Opens (creating if needed) `path` for artifacts of `engine`.
    pub fn open(path: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            path: path.to_path_buf(),
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    fn file_name(&self, digest: &Digest) -> String {
        format!("{digest}-{}.cwasm", self.engine_hash)
    }

    /// The precompiled component for `digest`, if a usable one is on disk.
    /// A stale or damaged file is reported and ignored: the caller compiles.
    pub fn load(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let name = self.file_name(digest);
        if !self.dir.exists(&name) {
            return None;
        }
        // SAFETY: wasmtime requires that deserialized bytes come from
        // `Component::serialize` of a compatible engine and were not tampered
        // with. Files here are only written by `store` below, in a directory
        // the host owns, under a name binding them to the module's digest and
        // to this engine's compatibility hash; wasmtime additionally checks
        // the artifact's header, version and settings and refuses mismatches.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, self.path.join(&name)) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(file = %name, %error, "ignoring unusable precompiled module");
                None
            }
        }
    }

    /// Saves `component` for later processes. Written to a temporary name and
    /// renamed, so a reader never sees a partial file. Failure only costs a
    /// later recompile, so it is logged, not returned.
    pub fn store(&self, digest: &Digest, component: &Component) {
        let name = self.file_name(digest);
        let temp = format!("{name}.{}.tmp", std::process::id());
        let written = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let mut file = self.dir.create(&temp).map_err(|e| e.to_string())?;
                file.write_all(&bytes).map_err(|e| e.to_string())?;
                self.dir
                    .rename(&temp, &self.dir, &name)
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = written {
            let _ = self.dir.remove_file(&temp);
            tracing::warn!(file = %name, %error, "could not save the precompiled module");
        }
    }
}
