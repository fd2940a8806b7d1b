//! End-to-end tests against a real kube-apiserver: `cargo test -p sous-tests
//! --test e2e`.
//!
//! One control plane serves the whole binary (see `sous_tests::envtest`);
//! each scenario is a trial with its own tokio runtime, client and namespace.
//! Without a control plane to run against, the binary prints one line saying
//! why and passes.

mod contract;
mod faults;
mod hardening;
mod harness_smoke;
mod install;
mod node;
mod operator;
mod patterns;
mod support;
mod tenancy;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use libtest_mimic::{Arguments, Trial};
use sous_tests::envtest::{TestCluster, create_namespace};
use tokio::sync::Mutex;

/// A [`Scenario`] of `module::function`, optionally with what it needs.
macro_rules! scenario {
    ($module:ident :: $function:ident) => {
        scenario!(@ $module::$function, Needs::Shared)
    };
    ($module:ident :: $function:ident, needs_controller_manager) => {
        scenario!(@ $module::$function, Needs::ControllerManager)
    };
    ($module:ident :: $function:ident, own_control_plane) => {
        scenario!(@ $module::$function, Needs::OwnControlPlane)
    };
    ($module:ident :: $function:ident, node) => {
        scenario!(@ $module::$function, Needs::Node)
    };
    (@ $module:ident :: $function:ident, $needs:expr) => {
        Scenario {
            name: concat!(stringify!($module), "::", stringify!($function)),
            needs: $needs,
            run: |env| Box::pin($module::$function(env)),
        }
    };
}

/// What a scenario needs beyond the shared control plane.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Nothing: it runs on the shared control plane.
    Shared,
    /// kube-controller-manager (garbage collection).
    ControllerManager,
    /// A control plane of its own, whose processes it stops and starts.
    OwnControlPlane,
    /// A node (kubelet, containerd): the node control plane, which the node
    /// trials share one at a time.
    Node,
}

/// Every scenario, one line each: `scenario!(module::function)`, with
/// `needs_controller_manager` after it when it relies on garbage collection,
/// `own_control_plane` when it stops and starts the control plane, `node`
/// when it runs pods.
fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(harness_smoke::apiserver_answers),
        scenario!(harness_smoke::crd_from_yaml_is_served),
        scenario!(harness_smoke::rbac_is_enforced),
        scenario!(
            harness_smoke::owned_objects_are_garbage_collected,
            needs_controller_manager
        ),
        scenario!(operator::my_app_converges),
        scenario!(operator::children_follow_the_parent),
        scenario!(operator::undesired_children_are_pruned),
        scenario!(operator::finalizer_cleans_up),
        scenario!(operator::modules_hot_reload),
        scenario!(operator::hostile_guests_are_contained),
        scenario!(operator::impersonation_bounds_writes),
        scenario!(operator::restart_converges_without_duplicates),
        scenario!(operator::large_module_loads_from_parts),
        scenario!(operator::python_my_app_from_config_map_parts),
        scenario!(operator::one_leader_among_two_hosts),
        scenario!(operator::a_leader_that_loses_its_lease_exits),
        scenario!(operator::missing_parent_kind_is_retried),
        scenario!(operator::steady_state_costs_no_calls),
        scenario!(operator::hundred_parents),
        scenario!(operator::push_uploads_and_switches_modules),
        scenario!(hardening::a_bad_first_upload_stays_reported),
        scenario!(hardening::deleting_a_reconciler_releases_its_parents),
        scenario!(hardening::a_crd_installed_later_is_picked_up_at_once),
        scenario!(hardening::finalizing_parents_show_it_in_status),
        scenario!(hardening::existing_objects_reach_the_guest_typed),
        scenario!(hardening::a_restart_costs_one_pass_per_parent),
        scenario!(hardening::a_refused_child_writes_nothing),
        scenario!(patterns::parent_selector_picks_and_lets_go),
        scenario!(
            patterns::orphaned_children_survive,
            needs_controller_manager
        ),
        scenario!(patterns::adoption_is_explicit),
        scenario!(patterns::update_strategies_recreate_or_wait_for_deletion),
        scenario!(patterns::rolling_update_goes_one_at_a_time),
        scenario!(patterns::decorator_attaches_to_namespaces),
        scenario!(patterns::secrets_propagate_and_copies_are_released),
        scenario!(patterns::immutable_config_is_recreated),
        scenario!(patterns::a_decorator_leaves_the_parents_status_alone),
        scenario!(patterns::a_parent_that_left_while_the_host_was_away_is_let_go),
        scenario!(contract::the_fields_of_0_2_reach_the_cluster),
        scenario!(contract::unsettled_requests_are_refused),
        scenario!(contract::a_0_1_component_runs_beside_0_2),
        scenario!(contract::the_image_updater_patches_deployments_it_does_not_own),
        scenario!(tenancy::namespaced_reconcilers_are_confined),
        scenario!(tenancy::cluster_reconcilers_keep_their_powers),
        scenario!(tenancy::push_without_rbac_rights_says_whom_to_ask),
        scenario!(faults::apiserver_outage, own_control_plane),
        scenario!(faults::etcd_restart, own_control_plane),
        scenario!(faults::watches_expire_and_relist, own_control_plane),
        scenario!(
            faults::throttled_by_priority_and_fairness,
            own_control_plane
        ),
        scenario!(faults::hot_reload_under_load, own_control_plane),
        scenario!(faults::host_killed_mid_pass),
        scenario!(faults::field_managers_fight_without_a_hot_loop),
        scenario!(install::broad),
        scenario!(install::least_privilege),
        scenario!(node::install_upgrade_uninstall, node),
        scenario!(node::two_replicas_fail_over, node),
    ]
}

/// The control plane with a node, started by the first node trial; holding
/// its lock is what runs the node trials one at a time (one kubelet per
/// machine).
static NODE_CLUSTER: Mutex<Option<Arc<TestCluster>>> = Mutex::const_new(None);

/// What a scenario is given.
pub struct Env {
    /// The control plane shared by every trial.
    pub cluster: Arc<TestCluster>,
    /// An admin client made in this trial's runtime.
    pub client: kube::Client,
    /// A namespace of this trial's own, created for it.
    pub namespace: String,
}

/// The future of a scenario.
type Run = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A scenario: an `async fn(Env) -> anyhow::Result<()>` and its name.
struct Scenario {
    name: &'static str,
    needs: Needs,
    run: fn(Env) -> Run,
}

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    // The in-process hosts log like `sous run` when SOUS_LOG is set.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SOUS_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    if let Some(reason) = TestCluster::skip_reason() {
        println!("e2e: skipped: {reason}");
        return ExitCode::SUCCESS;
    }
    let node_skip = TestCluster::node_skip_reason();
    if let Some(reason) = &node_skip
        && !arguments.list
    {
        println!("e2e: node trials skipped: {reason}");
    }
    if arguments.list {
        let trials = scenarios()
            .into_iter()
            .map(|s| Trial::test(s.name, || Ok(())));
        return libtest_mimic::run(&arguments, trials.collect()).exit_code();
    }

    let started = Instant::now();
    let cluster = match start() {
        Ok(cluster) => Arc::new(cluster),
        Err(error) => {
            eprintln!("e2e: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("e2e: cluster ready in {:.1?}", started.elapsed());

    let trials = scenarios()
        .into_iter()
        .map(|scenario| trial(scenario, &cluster, node_skip.is_none()))
        .collect();
    let conclusion = libtest_mimic::run(&arguments, trials);
    let node_cluster = NODE_CLUSTER
        .try_lock()
        .ok()
        .and_then(|mut slot| slot.take());
    if let Some(path) = node_cluster
        .and_then(Arc::into_inner)
        .and_then(|node_cluster| node_cluster.stop(conclusion.has_failed()))
    {
        println!("e2e: node files kept in {path}");
    }

    match Arc::into_inner(cluster) {
        Some(cluster) => {
            if let Some(path) = cluster.stop(conclusion.has_failed()) {
                println!("e2e: files kept in {path}");
            }
        }
        None => eprintln!("e2e: a trial still holds the cluster; its processes end with this one"),
    }
    println!("e2e: whole run {:.1?}", started.elapsed());
    conclusion.exit_code()
}

/// Starts the control plane in a runtime of its own: no client made here
/// outlives it.
fn start() -> anyhow::Result<TestCluster> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(TestCluster::start())?
        .ok_or_else(|| anyhow::anyhow!("the control plane went away after it was found"))
}

/// The trial of `scenario`: a runtime, a client and a namespace of its own
/// (and, when it needs one, a control plane of its own); the namespace is
/// deleted when the scenario passes, kept when it fails.
fn trial(scenario: Scenario, cluster: &Arc<TestCluster>, node: bool) -> Trial {
    let shared = Arc::clone(cluster);
    let ignored = match scenario.needs {
        Needs::Shared => false,
        Needs::ControllerManager => !shared.has_controller_manager(),
        Needs::OwnControlPlane => !shared.can_inject_faults(),
        Needs::Node => !node,
    };
    Trial::test(scenario.name, move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime
            .block_on(async move {
                // Held to the end of the trial: node trials run one at a time.
                let mut node_slot = match scenario.needs {
                    Needs::Node => Some(NODE_CLUSTER.lock().await),
                    _ => None,
                };
                let cluster = match scenario.needs {
                    Needs::OwnControlPlane => Arc::new(
                        TestCluster::start()
                            .await?
                            .context("the control plane went away after it was found")?,
                    ),
                    Needs::Node => node_control_plane(node_slot.as_deref_mut()).await?,
                    _ => shared,
                };
                let client = cluster.client().await;
                let namespace = create_namespace(&client, &namespace_prefix(scenario.name)).await?;
                let env = Env {
                    // Kept here too: a control plane of the trial's own must
                    // outlive the scenario, for the namespace's deletion.
                    cluster: cluster.clone(),
                    client: client.clone(),
                    namespace: namespace.clone(),
                };
                (scenario.run)(env)
                    .await
                    .with_context(|| format!("namespace `{namespace}` (kept)"))?;
                Api::<Namespace>::all(client)
                    .delete(&namespace, &DeleteParams::background())
                    .await?;
                anyhow::Ok(())
            })
            .map_err(|error| format!("{error:#}").into())
    })
    .with_ignored_flag(ignored)
}

/// The node control plane in `slot`, started there if it is not yet.
async fn node_control_plane(
    slot: Option<&mut Option<Arc<TestCluster>>>,
) -> anyhow::Result<Arc<TestCluster>> {
    let slot = slot.context("a node trial holds the node's lock")?;
    if let Some(cluster) = slot.as_ref() {
        return Ok(cluster.clone());
    }
    let started = Instant::now();
    let cluster = Arc::new(
        TestCluster::start_with_node()
            .await?
            .context("the node's programs went away after they were found")?,
    );
    println!("e2e: node ready in {:.1?}", started.elapsed());
    *slot = Some(cluster.clone());
    Ok(cluster)
}

/// `e2e-<function>` with dashes, short enough for a generated namespace name.
fn namespace_prefix(name: &str) -> String {
    let function = name.rsplit("::").next().unwrap_or(name);
    let mut prefix = format!("e2e-{}", function.replace('_', "-"));
    prefix.truncate(50);
    prefix.trim_end_matches('-').to_owned()
}
