//! The runtime against real guests built from `guests/rust`: every hostile
//! behaviour ends in its own error, within its limit, and the host stays able
//! to serve the next call.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sous::render::{self, Observed, RenderError, Rendered};
use sous::runtime::{
    CallContext, CallError, EngineOptions, Limits, LoadedModule, Runtime, RuntimeOptions,
};
use sous::validate::{Rules, TypeRef, ValidationError};
use sous_tests::{attacks, guests};

fn module(crate_name: &str) -> Arc<LoadedModule> {
    attacks::load(&guests::guest(crate_name))
}

fn parent(attack: &str) -> Observed {
    attacks::hostile_parent(attack)
}

/// Runs one attack of the Rust hostile guest.
fn attack(
    attack: &str,
    limits: &Limits,
    rules: &Rules,
) -> (Result<Rendered, RenderError>, Duration) {
    attacks::attack(&module("hostile"), attack, limits, rules)
}

fn call_error(attack_name: &str, limits: &Limits) -> (CallError, Duration) {
    attacks::call_error(&module("hostile"), attack_name, limits)
}

fn assert_host_serves() {
    attacks::assert_host_serves(&module("my_app"), &module("hostile"));
}

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let limits = Limits {
        fuel: 50_000_000,
        deadline: Duration::from_secs(30),
        ..Limits::default()
    };
    let (error, elapsed) = call_error("loop", &limits);
    assert!(
        matches!(error, CallError::OutOfFuel { fuel: 50_000_000 }),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert_host_serves();
}

#[test]
fn an_endless_loop_is_stopped_within_twice_its_deadline() {
    let deadline = Duration::from_millis(500);
    let limits = Limits {
        fuel: u64::MAX,
        deadline,
        ..Limits::default()
    };
    let (error, elapsed) = call_error("loop", &limits);
    assert!(
        matches!(error, CallError::DeadlineExceeded { .. }),
        "{error}"
    );
    assert!(elapsed >= deadline, "stopped early, after {elapsed:?}");
    assert!(
        elapsed < 2 * deadline,
        "stopped after {elapsed:?}, over twice the deadline"
    );
    assert_host_serves();
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        max_memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let (error, _) = call_error("memory", &limits);
    match error {
        CallError::MemoryLimitExceeded { desired, limit } => {
            assert_eq!(limit, 64 << 20);
            assert!(desired > limit);
        }
        other => panic!("expected a memory limit error, got {other}"),
    }
    assert_host_serves();
}

#[test]
fn a_panic_is_a_trap_carrying_the_guests_message() {
    let (error, _) = call_error("panic", &Limits::default());
    let text = error.to_string();
    assert!(matches!(error, CallError::Trap { .. }), "{text}");
    assert!(text.contains("hostile guest panicked on purpose"), "{text}");
    assert_host_serves();
}

#[test]
fn a_100_mb_response_is_too_large() {
    let (error, _) = call_error("huge", &Limits::default());
    match error {
        CallError::ResponseTooLarge { bytes, limit } => {
            assert!(bytes > 100 << 20, "{bytes}");
            assert_eq!(limit, Limits::default().max_response_bytes);
        }
        other => panic!("expected a response size error, got {other}"),
    }
    assert_host_serves();
}

#[test]
fn a_response_that_is_not_json_is_malformed() {
    let (error, _) = call_error("garbage", &Limits::default());
    assert!(
        error.to_string().contains("child #1 is not valid JSON"),
        "{error}"
    );
    assert_host_serves();
}

#[test]
fn a_forbidden_kind_rejects_the_whole_response() {
    let rules = Rules {
        allowed_kinds: Some(vec![TypeRef::parse("v1/ConfigMap").unwrap()]),
        ..Rules::default()
    };
    match attack("forbidden", &Limits::default(), &rules) {
        (Err(RenderError::Validation(ValidationError::KindNotAllowed { kind, .. })), _) => {
            assert_eq!(
                kind.to_string(),
                "rbac.authorization.k8s.io/v1/ClusterRoleBinding"
            );
        }
        (other, _) => panic!("expected the kind to be refused, got {other:?}"),
    }
    assert_host_serves();
}

#[test]
fn ten_thousand_objects_are_refused_by_default_and_render_when_allowed() {
    let (error, _) = call_error("many", &Limits::default());
    assert!(
        matches!(
            error,
            CallError::TooManyObjects {
                count: 10_000,
                limit: 1_000
            }
        ),
        "{error}"
    );
    let raised = Limits {
        max_objects: 10_000,
        ..Limits::default()
    };
    let rendered = attack("many", &raised, &Rules::default())
        .0
        .expect("renders with the raised limit");
    assert_eq!(rendered.children.len(), 10_000);
    assert_eq!(rendered.children[9_999]["metadata"]["name"], "h-9999");
    assert_eq!(rendered.children[9_999]["metadata"]["namespace"], "test");
}

#[test]
fn the_contract_attacks_are_refused() {
    let hostile = module("hostile");
    attacks::assert_contract_attacks_refused(&hostile, "rust");
    // Requests that change on every call, whatever the cluster holds.
    attacks::assert_refused(&hostile, "rust", &[("related-random", "did not settle")]);
    assert_host_serves();
}

#[test]
fn a_0_1_component_is_called_through_the_current_types() {
    let legacy = module("legacy");
    assert_eq!(legacy.world(), sous::runtime::WorldVersion::V0_1);
    assert_eq!(module("hostile").world(), sous::runtime::WorldVersion::V0_2);
    let observed = Observed {
        parent: json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": "old", "namespace": "shop"},
            "spec": {"image": "nginx:1.27"},
        }),
        desired: Some(json!({"children": [], "status": {}})),
        ..Observed::default()
    };
    let rendered = render::render(
        &legacy,
        "legacy",
        &observed,
        &Limits::default(),
        &Rules::default(),
        &render::NoRelatedObjects,
    )
    .expect("a 0.1.0 component renders");
    assert_eq!(rendered.children[0]["data"]["image"], "nginx:1.27");
    assert_eq!(rendered.status.unwrap()["servedBy"], "0.1.0");
    assert!(rendered.parent_labels.is_none() && rendered.patches.is_empty());
}

#[test]
fn a_transient_error_is_retryable() {
    let (error, _) = call_error("transient", &Limits::default());
    assert!(matches!(error, CallError::Transient(ref m) if m == "the hostile guest is resting"));
    assert!(error.is_retryable());
}

#[test]
fn the_sandbox_grants_no_filesystem_environment_arguments_or_network() {
    let rendered = attack("escape", &Limits::default(), &Rules::default())
        .0
        .unwrap();
    assert_eq!(
        rendered.children[0]["data"],
        json!({"file": "denied", "listing": "denied", "network": "denied", "environment": "0", "arguments": "0"})
    );
}

#[test]
fn no_state_survives_from_one_call_to_the_next() {
    for _ in 0..3 {
        let rendered = attack("remember", &Limits::default(), &Rules::default())
            .0
            .unwrap();
        assert_eq!(
            rendered.children[0]["metadata"]["name"], "h-1",
            "a call saw an earlier call's memory"
        );
    }
}

#[test]
fn loading_the_same_bytes_twice_reuses_the_compiled_module() {
    let bytes = guests::guest_bytes("my_app");
    let first = attacks::runtime().load(&bytes).unwrap();
    let second = attacks::runtime().load(&bytes).unwrap();
    assert!(Arc::ptr_eq(&first.module, &second.module));
    assert_eq!(second.origin, sous::runtime::Origin::Memory);
}

#[test]
fn loads_of_the_same_bytes_racing_share_one_module() {
    let bytes = guests::guest_bytes("my_app");
    // A runtime of its own, so that no other test has loaded the module yet.
    let runtime = Runtime::new(&RuntimeOptions::default()).expect("runtime");
    let modules: Vec<Arc<LoadedModule>> = std::thread::scope(|scope| {
        let loads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| runtime.load(&bytes).expect("my-app loads").module))
            .collect();
        loads.into_iter().map(|load| load.join().unwrap()).collect()
    });
    assert!(
        modules
            .iter()
            .all(|module| Arc::ptr_eq(module, &modules[0])),
        "one digest, one module"
    );
}

#[test]
fn a_precompiled_module_is_loaded_from_disk_by_a_new_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions {
        engine: EngineOptions {
            pool_slots: None,
            ..EngineOptions::default()
        },
        cache_dir: Some(dir.path().to_path_buf()),
    };
    let bytes = guests::guest_bytes("my_app");
    let first = Runtime::new(&options).unwrap().load(&bytes).unwrap();
    assert_eq!(first.origin, sous::runtime::Origin::Compiled);
    let second = Runtime::new(&options).unwrap().load(&bytes).unwrap();
    assert_eq!(second.origin, sous::runtime::Origin::Precompiled);
    // Artifacts are mapped, not copied: damage one only once nothing maps it,
    // as disk corruption between two runs would.
    drop((first, second));

    // A damaged artifact is ignored and replaced, never trusted.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = Runtime::new(&options).unwrap().load(&bytes).unwrap();
    assert_eq!(third.origin, sous::runtime::Origin::Compiled);
    let observed = parent("none");
    let value: Value = serde_json::to_value(
        render::render(
            &third.module,
            "x",
            &observed,
            &Limits::default(),
            &Rules::default(),
            &render::NoRelatedObjects,
        )
        .is_err(),
    )
    .unwrap();
    assert_eq!(
        value,
        json!(true),
        "my-app must reject a parent without its spec"
    );
}

#[test]
fn finalize_of_a_guest_with_nothing_to_clean_up_is_done_at_once() {
    let context = CallContext {
        reconciler: "my-app".into(),
        parent: "test/h".into(),
    };
    let request = render::request("my-app", &parent("none"));
    let finalized = module("my_app")
        .finalize(&request, &Limits::default(), context)
        .expect("finalize answers");
    assert!(finalized.done);
    assert_eq!(finalized.requeue_after, None);
    assert!(finalized.events.is_empty());
}
