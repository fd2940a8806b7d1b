//! Loading modules: digest, compile once (or load the precompiled artifact),
//! link once, and keep one `InstancePre` per digest for every later call.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::{current, v0_1};
use super::engine::{self, EngineOptions};
use super::error::LoadError;
use super::precompiled::PrecompiledDir;
use super::sandbox::GuestState;
use super::world::{WorldPre, WorldVersion};

/// The sha256 of a module's bytes: its identity everywhere in Sous.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{self}")
    }
}

/// Where a loaded module's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled by Cranelift in this process.
    Compiled,
    /// Read from the on-disk precompiled cache.
    Precompiled,
    /// Already loaded in this process.
    Memory,
}

/// A module ready to be called: linked and type-checked against the world.
pub struct LoadedModule {
    pub(super) digest: Digest,
    pub(super) pre: WorldPre,
}

impl LoadedModule {
    /// The module's sha256.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The version of the contract the module implements.
    pub fn world(&self) -> WorldVersion {
        self.pre.version()
    }
}

/// The result of [`Runtime::load`].
pub struct Loaded {
    /// The callable module.
    pub module: Arc<LoadedModule>,
    /// Where its machine code came from this time.
    pub origin: Origin,
    /// How long loading took.
    pub elapsed: Duration,
}

/// Settings of a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Engine settings (pooling allocator, memory ceiling).
    pub engine: EngineOptions,
    /// Directory for precompiled modules; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
}

/// The one engine of the process and every module loaded into it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<GuestState>,
    precompiled: Option<PrecompiledDir>,
    loaded: Mutex<HashMap<Digest, Weak<LoadedModule>>>,
}

impl Runtime {
    /// Builds the engine and the linker shared by every module.
    pub fn new(options: &RuntimeOptions) -> Result<Self, LoadError> {
        let engine =
            engine::build(&options.engine).map_err(|e| LoadError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        current::Reconciler::add_to_linker::<_, HasSelf<GuestState>>(&mut linker, |state| state)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        v0_1::Reconciler::add_to_linker::<_, HasSelf<GuestState>>(&mut linker, |state| state)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let precompiled = options.cache_dir.as_ref().and_then(|path| {
            PrecompiledDir::open(path, &engine)
                .inspect_err(|error| {
                    tracing::warn!(dir = %path.display(), %error, "precompiled cache disabled")
                })
                .ok()
        });
        Ok(Self {
            engine,
            linker,
            precompiled,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// Makes `bytes` callable. The same bytes loaded twice share one compiled
    /// module for as long as anyone holds it.
    pub fn load(&self, bytes: &[u8]) -> Result<Loaded, LoadError> {
        let started = Instant::now();
        check_header(bytes)?;
        let digest = Digest::of(bytes);
        if let Some(module) = self.cached(&digest) {
            return Ok(Loaded {
                module,
                origin: Origin::Memory,
                elapsed: started.elapsed(),
            });
        }
        let (component, origin) = self.component(bytes, &digest)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let pre = WorldPre::detect(instance_pre)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        // Another load of the same bytes may have finished meanwhile: share
        // its module, so that one digest is one module however loads race.
        if let Some(module) = loaded.get(&digest).and_then(Weak::upgrade) {
            return Ok(Loaded {
                module,
                origin: Origin::Memory,
                elapsed: started.elapsed(),
            });
        }
        let module = Arc::new(LoadedModule { digest, pre });
        loaded.retain(|_, module| module.strong_count() > 0);
        loaded.insert(digest, Arc::downgrade(&module));
        Ok(Loaded {
            module,
            origin,
            elapsed: started.elapsed(),
        })
    }

    fn cached(&self, digest: &Digest) -> Option<Arc<LoadedModule>> {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.get(digest)?.upgrade()
    }

    fn component(&self, bytes: &[u8], digest: &Digest) -> Result<(Component, Origin), LoadError> {
        if let Some(component) = self
            .precompiled
            .as_ref()
            .and_then(|dir| dir.load(&self.engine, digest))
        {
            return Ok((component, Origin::Precompiled));
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(dir) = &self.precompiled {
            dir.store(digest, &component);
        }
        Ok((component, Origin::Compiled))
    }
}

/// Tells apart the common wrong inputs before handing bytes to the compiler.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_VERSION: &[u8] = &[1, 0, 0, 0];
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if !bytes.starts_with(MAGIC) {
        return Err(LoadError::NotWasm);
    }
    if bytes.get(4..8) == Some(CORE_VERSION) {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_the_common_mistakes_apart() {
        assert!(matches!(check_header(b""), Err(LoadError::Empty)));
        assert!(matches!(
            check_header(b"\x7fELF\x02\x01"),
            Err(LoadError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn digest_prints_as_hex_sha256() {
        let digest = Digest::of(b"");
        assert_eq!(
            digest.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(format!("{digest:?}").starts_with("sha256:e3b0"));
    }
}
