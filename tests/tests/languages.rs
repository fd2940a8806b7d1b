//! Every SDK language against the same contract and the same limits, with
//! components really built from `guests/<lang>/` by their `build` scripts:
//! - `my-app` answers exactly as the Rust `my-app` for every shared golden
//!   parent (guests/golden/my-app), errors included;
//! - an endless loop, a memory bomb and a crash written in that language end
//!   in the same typed errors as the Rust hostile guest's, and the host still
//!   serves the next call;
//! - `finalize` is exported, and by default answers done at once.

use std::sync::Arc;
use std::time::Duration;

use sous::inputs;
use sous::render::{self, Observed};
use sous::runtime::{CallContext, CallError, Limits, LoadedModule};
use sous::validate::Rules;
use sous_tests::{attacks, guests};

/// A language's `my-app` and `hostile` components.
struct Language {
    name: &'static str,
    my_app: Arc<LoadedModule>,
    hostile: Arc<LoadedModule>,
}

impl Language {
    fn build(language: &'static str) -> Self {
        Self {
            name: language,
            my_app: attacks::load(&guests::component(language, "my-app")),
            hostile: attacks::load(&guests::component(language, "hostile")),
        }
    }

    fn call_error(&self, attack: &str, limits: &Limits) -> (CallError, Duration) {
        attacks::call_error(&self.hostile, attack, limits)
    }

    fn assert_host_serves(&self) {
        attacks::assert_host_serves(&self.my_app, &self.hostile);
    }
}

/// Each golden case's parent and observed children.
fn golden_cases() -> Vec<(String, Observed)> {
    let dir = guests::repo_root().join("guests/golden/my-app");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("guests/golden/my-app")
        .map(|entry| entry.unwrap().path())
        .collect();
    cases.sort();
    cases
        .iter()
        .map(|case| {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            (name, inputs::read_case(case).expect("a golden case"))
        })
        .collect()
}

fn answers_like_rust(guest: &Language) {
    let rust = attacks::load(&guests::guest("my_app"));
    let language = guest.name;
    let cases = golden_cases();
    assert!(cases.len() >= 4, "{cases:?}");
    for (case, observed) in cases {
        let render = |module: &LoadedModule| {
            render::render(
                module,
                "my-app",
                &observed,
                &Limits::default(),
                &Rules::default(),
                &render::NoRelatedObjects,
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            render(&guest.my_app),
            render(&rust),
            "{language}: case `{case}`"
        );
    }
}

fn an_endless_loop_runs_out_of_fuel(guest: &Language) {
    let language = guest.name;
    let limits = Limits {
        fuel: 50_000_000,
        deadline: Duration::from_secs(30),
        ..Limits::default()
    };
    let (error, elapsed) = guest.call_error("loop", &limits);
    assert!(
        matches!(error, CallError::OutOfFuel { fuel: 50_000_000 }),
        "{language}: {error}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    guest.assert_host_serves();
}

fn an_endless_loop_is_stopped_by_its_deadline(guest: &Language) {
    let language = guest.name;
    let deadline = Duration::from_millis(500);
    let limits = Limits {
        fuel: u64::MAX,
        deadline,
        ..Limits::default()
    };
    let (error, elapsed) = guest.call_error("loop", &limits);
    assert!(
        matches!(error, CallError::DeadlineExceeded { .. }),
        "{language}: {error}"
    );
    assert!(elapsed < 4 * deadline, "stopped after {elapsed:?}");
    guest.assert_host_serves();
}

fn a_memory_bomb_hits_the_memory_limit(guest: &Language) {
    let language = guest.name;
    let limits = Limits {
        max_memory_bytes: 128 << 20,
        ..Limits::default()
    };
    let (error, _) = guest.call_error("memory", &limits);
    match error {
        CallError::MemoryLimitExceeded { desired, limit } => {
            assert_eq!(limit, 128 << 20);
            assert!(desired > limit);
        }
        other => panic!("{language}: expected a memory limit error, got {other}"),
    }
    guest.assert_host_serves();
}

fn a_crash_is_a_trap(guest: &Language) {
    let language = guest.name;
    let (error, _) = guest.call_error("panic", &Limits::default());
    assert!(
        matches!(error, CallError::Trap { .. }),
        "{language}: {error}"
    );
    guest.assert_host_serves();
}

fn the_contract_attacks_are_refused(guest: &Language) {
    attacks::assert_contract_attacks_refused(&guest.hostile, guest.name);
    guest.assert_host_serves();
}

fn finalize_is_exported_and_done_by_default(guest: &Language) {
    let language = guest.name;
    let context = CallContext {
        reconciler: "my-app".into(),
        parent: "test/h".into(),
    };
    let request = render::request("my-app", &attacks::hostile_parent("none"));
    let finalized = guest
        .my_app
        .finalize(&request, &Limits::default(), context)
        .unwrap_or_else(|e| panic!("{language}: finalize failed: {e}"));
    assert!(finalized.done, "{language}");
    assert_eq!(finalized.requeue_after, None, "{language}");
    assert!(finalized.events.is_empty(), "{language}");
}

/// The same tests for each language, named `<language>::<test>`; each
/// language's components are built and compiled once for all its tests.
macro_rules! language {
    ($language:ident) => {
        mod $language {
            use std::sync::OnceLock;

            fn guest() -> &'static super::Language {
                static GUEST: OnceLock<super::Language> = OnceLock::new();
                GUEST.get_or_init(|| super::Language::build(stringify!($language)))
            }

            #[test]
            fn my_app_answers_like_rust() {
                super::answers_like_rust(guest());
            }
            #[test]
            fn an_endless_loop_runs_out_of_fuel() {
                super::an_endless_loop_runs_out_of_fuel(guest());
            }
            #[test]
            fn an_endless_loop_is_stopped_by_its_deadline() {
                super::an_endless_loop_is_stopped_by_its_deadline(guest());
            }
            #[test]
            fn a_memory_bomb_hits_the_memory_limit() {
                super::a_memory_bomb_hits_the_memory_limit(guest());
            }
            #[test]
            fn a_crash_is_a_trap() {
                super::a_crash_is_a_trap(guest());
            }
            #[test]
            fn the_contract_attacks_are_refused() {
                super::the_contract_attacks_are_refused(guest());
            }
            #[test]
            fn finalize_is_exported_and_done_by_default() {
                super::finalize_is_exported_and_done_by_default(guest());
            }
        }
    };
}

language!(python);
language!(js);
language!(c);
language!(go);
