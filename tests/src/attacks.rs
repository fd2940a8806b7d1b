//! The hostile guests' attacks, run through a runtime set up as the host's,
//! and the check that the host still serves afterwards. Shared by the Rust
//! runtime tests and the per-language tests.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sous::render::{self, Observed, RenderError, Rendered};
use sous::runtime::{CallError, EngineOptions, Limits, LoadedModule, Runtime, RuntimeOptions};
use sous::validate::{Rules, TypeRef};

/// One pooled runtime per test binary, as in the host: faults in one call
/// must not poison the slots later calls reuse. Compiled modules are kept
/// on disk between test binaries and runs (big interpreted guests take
/// seconds to compile).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(&RuntimeOptions {
            engine: EngineOptions {
                pool_slots: Some(8),
                ..EngineOptions::default()
            },
            cache_dir: Some(std::env::temp_dir().join("sous-tests-cache")),
        })
        .expect("runtime")
    })
}

/// The component at `path`, compiled once by [`runtime`].
pub fn load(path: &Path) -> Arc<LoadedModule> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"));
    runtime()
        .load(&bytes)
        .unwrap_or_else(|e| panic!("loading {path:?}: {e}"))
        .module
}

/// A `Hostile` parent asking for `attack`.
pub fn hostile_parent(attack: &str) -> Observed {
    Observed {
        parent: json!({
            "apiVersion": "example.sous.dev/v1",
            "kind": "Hostile",
            "metadata": {"name": "h", "namespace": "test", "uid": "u-1", "generation": 1},
            "spec": {"attack": attack},
        }),
        ..Observed::default()
    }
}

/// Runs one attack; the duration covers the call alone, not loading the module.
pub fn attack(
    hostile: &LoadedModule,
    attack: &str,
    limits: &Limits,
    rules: &Rules,
) -> (Result<Rendered, RenderError>, Duration) {
    let started = Instant::now();
    let outcome = render::render(
        hostile,
        "hostile",
        &hostile_parent(attack),
        limits,
        rules,
        &render::NoRelatedObjects,
    );
    (outcome, started.elapsed())
}

/// Runs an attack that must end in a call error, and returns it.
pub fn call_error(
    hostile: &LoadedModule,
    attack_name: &str,
    limits: &Limits,
) -> (CallError, Duration) {
    match attack(hostile, attack_name, limits, &Rules::default()) {
        (Err(RenderError::Call(error)), elapsed) => (error, elapsed),
        (other, _) => panic!("attack `{attack_name}` gave {other:?}"),
    }
}

/// A good guest still renders, and so does the hostile guest's harmless path:
/// the host is unharmed.
pub fn assert_host_serves(my_app: &LoadedModule, hostile: &LoadedModule) {
    let observed = Observed {
        parent: json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 2, "image": "nginx", "port": 80},
        }),
        ..Observed::default()
    };
    let rendered = render::render(
        my_app,
        "my-app",
        &observed,
        &Limits::default(),
        &Rules::default(),
        &render::NoRelatedObjects,
    )
    .expect("my-app renders after a hostile call");
    assert_eq!(rendered.children.len(), 2);
    let (benign, _) = attack(hostile, "none", &Limits::default(), &Rules::default());
    assert_eq!(
        benign
            .expect("the hostile guest's harmless path works")
            .children
            .len(),
        1
    );
}

/// The attacks on the fields of `sous:reconciler@0.2.0` every hostile guest
/// has: each is refused whole (nothing of the answer rendered) with the
/// reason a user would need.
pub fn assert_contract_attacks_refused(hostile: &LoadedModule, language: &str) {
    assert_refused(
        hostile,
        language,
        &[
            ("patch-owner", "may not set `metadata.ownerReferences`"),
            (
                "parent-label-reserved",
                "keys under `sous.dev/` are the host's",
            ),
            ("related-undeclared", "not declared in `spec.related`"),
            ("related-selector", "the selector is not a label selector"),
            ("related-unsettled", "did not settle"),
        ],
    );
}

/// Runs each `(attack, problem)` with `v1/ConfigMap` declared related and
/// ConfigMaps `h-0`..`h-9` to request, and checks it is refused for `problem`.
pub fn assert_refused(hostile: &LoadedModule, language: &str, attacks: &[(&str, &str)]) {
    let rules = Rules {
        readable: Some(vec![TypeRef::parse("v1/ConfigMap").unwrap()]),
        ..Rules::default()
    };
    // Objects an ever-growing series of requests keeps finding.
    let config_maps: Vec<Value> = (0..10)
        .map(|k| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("h-{k}"), "namespace": "test"}})
        })
        .collect();
    let given = render::GivenObjects {
        objects: &config_maps,
        rules: &rules,
    };
    for &(name, problem) in attacks {
        let outcome = render::render(
            hostile,
            "hostile",
            &hostile_parent(name),
            &Limits::default(),
            &rules,
            &given,
        );
        match outcome {
            Err(error @ (RenderError::Validation(_) | RenderError::RelatedNotSettled)) => {
                assert!(
                    error.to_string().contains(problem),
                    "{language} {name}: {error}"
                );
            }
            other => panic!("{language} {name}: expected a refusal, got {other:?}"),
        }
    }
}
