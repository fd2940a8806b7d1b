//! Hot reload: watch the ConfigMaps a reconciler's module comes from, and
//! when they assemble into a new digest, compile it beside the serving one
//! and swap it in. A bad upload never replaces a good module.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::Host;
use super::status::{MODULE_READY, StatusReport};
use crate::crd::{ModuleSource, ReconcilerKey};
use crate::recovery::Recovering;
use crate::runtime::LoadedModule;
use crate::source;

/// Where a reconciler's module comes from and where it goes.
pub struct ModuleWatch {
    /// Which reconciler (for logs).
    pub key: ReconcilerKey,
    /// The namespace of its ConfigMaps unless `spec.module.namespace` names one.
    pub default_namespace: String,
    /// The module source, replaced when only `spec.module` changes.
    pub source: watch::Receiver<ModuleSource>,
    /// The serving module, set on every successful load.
    pub serving: watch::Sender<Option<Arc<LoadedModule>>>,
    /// Where ModuleReady and the digest are reported.
    pub report: Arc<StatusReport>,
}

/// Watches and loads until the source channel closes.
pub async fn watch_modules(mut module: ModuleWatch, host: Arc<Host>) {
    loop {
        let source = module.source.borrow_and_update().clone();
        let namespace = source
            .namespace
            .as_ref()
            .unwrap_or(&module.default_namespace);
        let api: Api<ConfigMap> = Api::namespaced(host.client.clone(), namespace);
        let names = source::config_map_names(&source);
        let mut events = config_map_events(&api, &names);
        let mut maps: HashMap<String, ConfigMap> = HashMap::new();
        let mut listed: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                changed = module.source.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                event = events.next() => {
                    let Some((name, event)) = event else { return };
                    match event {
                        Ok(watcher::Event::Apply(map) | watcher::Event::InitApply(map)) => {
                            maps.insert(name.clone(), map);
                        }
                        Ok(watcher::Event::Delete(_)) => {
                            maps.remove(&name);
                        }
                        Ok(watcher::Event::Init) => {
                            maps.remove(&name);
                            continue;
                        }
                        Ok(watcher::Event::InitDone) => {
                            listed.insert(name.clone());
                        }
                        Err(error) => {
                            tracing::warn!(reconciler = %module.key, config_map = %name, %error, "watching a module ConfigMap failed; retrying");
                            continue;
                        }
                    }
                    if listed.len() == names.len() {
                        load(&module, &source, &maps, &host).await;
                    }
                }
            }
        }
    }
}

/// One watch per ConfigMap name, merged; each event tagged with its name.
fn config_map_events(
    api: &Api<ConfigMap>,
    names: &[String],
) -> BoxStream<'static, (String, Result<watcher::Event<ConfigMap>, watcher::Error>)> {
    stream::select_all(names.iter().map(|name| {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let name = name.clone();
        watcher(api.clone(), config)
            .recovering()
            .map(move |event| (name.clone(), event))
            .boxed()
    }))
    .boxed()
}

/// Assembles the module from `maps`; if its digest is new, compiles it off
/// the async threads and swaps it in. Every failure is reported in
/// `ModuleReady` and leaves the serving module in place.
async fn load(
    module: &ModuleWatch,
    source: &ModuleSource,
    maps: &HashMap<String, ConfigMap>,
    host: &Host,
) {
    let keeping = if module.serving.borrow().is_some() {
        "; the previous module keeps serving"
    } else {
        ""
    };
    let bytes = match source::from_config_maps(source, |name| maps.get(name)) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(reconciler = %module.key, reason = error.reason(), %error, "module not usable");
            module.report.condition(
                MODULE_READY,
                false,
                error.reason(),
                format!("{error}{keeping}"),
            );
            return;
        }
    };
    let serving = module.serving.borrow().as_ref().map(|m| m.digest());
    if serving == Some(bytes.digest) {
        return;
    }
    let runtime = host.runtime.clone();
    let size = bytes.bytes.len();
    let loaded = tokio::task::spawn_blocking(move || runtime.load(&bytes.bytes))
        .await
        .expect("loading a module never panics");
    match loaded {
        Ok(loaded) => {
            let (digest, world) = (loaded.module.digest(), loaded.module.world());
            tracing::info!(reconciler = %module.key, %digest, size, %world, origin = ?loaded.origin, elapsed = ?loaded.elapsed, "module loaded and serving");
            module.report.module_digest(digest.to_string());
            module.report.condition(
                MODULE_READY,
                true,
                "Loaded",
                format!(
                    "module sha256:{digest} ({size} bytes, {world}) loaded in {} ms",
                    loaded.elapsed.as_millis()
                ),
            );
            if module.serving.send_replace(Some(loaded.module)).is_none() {
                host.modules_loaded(1);
            }
        }
        Err(error) => {
            tracing::warn!(reconciler = %module.key, %error, "module refused");
            module.report.condition(
                MODULE_READY,
                false,
                "ModuleInvalid",
                format!("{error}{keeping}"),
            );
        }
    }
}
