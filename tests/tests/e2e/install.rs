//! The Helm chart installed into the control plane (no kubelet: its pod never
//! runs), then `sous run` out of cluster *as the chart's ServiceAccount*,
//! driving MyApp to Ready: the chart's RBAC is sufficient, in both modes.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;
use sous::leader::LeaseTiming;
use sous_tests::chart;
use sous_tests::guests::guest_bytes;
use sous_tests::host::{self, TestHost};

use crate::Env;
use crate::support::{World, my_app, my_app_reconciler};

/// Broad RBAC (the default values) suffices for MyApp.
pub async fn broad(env: Env) -> anyhow::Result<()> {
    install_and_converge(env, "broad").await
}

/// Least-privilege RBAC listing MyApp's kinds suffices, and nothing else is
/// writable by the host.
pub async fn least_privilege(env: Env) -> anyhow::Result<()> {
    install_and_converge(env, "leastPrivilege").await
}

async fn install_and_converge(env: Env, mode: &str) -> anyhow::Result<()> {
    let helm = match chart::helm() {
        Ok(helm) => helm,
        Err(reason) => {
            println!("e2e: install: skipped: {reason}");
            return Ok(());
        }
    };
    let world = World::new(env).await;
    // The release is named after the namespace: its cluster-wide RBAC objects
    // must not collide with another trial's.
    let release = world.ns.clone();
    let helm_run = |args: &[&str]| -> anyhow::Result<()> {
        let output = Command::new(&helm)
            .args(args)
            .args(["--namespace", &world.ns, "--kubeconfig"])
            .arg(world.cluster.kubeconfig_path())
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "helm {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let chart_dir = chart::dir();
    let mode_value = format!("rbac.mode={}", json!(mode));
    helm_run(&[
        "install",
        &release,
        chart_dir.to_str().unwrap(),
        "--set-json",
        &mode_value,
    ])?;

    let account = format!("system:serviceaccount:{}:{release}-sous", world.ns);
    let own_group = format!("system:serviceaccounts:{}", world.ns);
    let as_chart = world
        .cluster
        .config_as(&account, &["system:serviceaccounts", &own_group]);

    let module = guest_bytes("my_app");
    let source = world.upload("my-app", &module).await;
    world.reconciler("my-app", my_app_reconciler(source)).await;
    let timing = LeaseTiming::scaled(Duration::from_secs(4));
    let _host = TestHost::start(
        as_chart.clone(),
        host::options(&world.ns, "installed", Some(timing)),
    );
    world
        .wait_reconciler("my-app", "Ready", "True", Some("Running"))
        .await;
    world.apply(my_app("web", 2)).await;
    world
        .wait_parent("MyApp", "web", "True", Some("Reconciled"))
        .await;
    for (api_version, kind) in [("apps/v1", "Deployment"), ("v1", "Service")] {
        assert!(
            world.get(api_version, kind, "web").await.is_some(),
            "{kind}"
        );
    }
    let leases = world.list("coordination.k8s.io/v1", "Lease").await;
    assert!(
        !leases.is_empty(),
        "the host holds a Lease in its namespace"
    );

    // Outside the chart's grants the apiserver refuses the host.
    let client = kube::Client::try_from(as_chart)?;
    let secret = serde_json::from_value::<Secret>(json!({"metadata": {"name": "stolen"}}))?;
    let refused = Api::<Secret>::namespaced(client.clone(), &world.ns)
        .create(&PostParams::default(), &secret)
        .await;
    assert_forbidden(refused.map(drop), "creating a Secret");
    if mode == "leastPrivilege" {
        let job = serde_json::from_value::<Job>(json!({
            "metadata": {"name": "unlisted"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}},
        }))?;
        let refused = Api::<Job>::namespaced(client, &world.ns)
            .create(&PostParams::default(), &job)
            .await;
        assert_forbidden(refused.map(drop), "creating a Job (not a listed kind)");
    }
    // The release's cluster-wide objects go with it.
    helm_run(&["uninstall", &release])
}

fn assert_forbidden(result: kube::Result<()>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what} as the chart's ServiceAccount: expected 403, got {other:?}"),
    }
}
