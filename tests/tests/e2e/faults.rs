//! Fault trials: the control plane or the host fails while parents are being
//! reconciled. Each trial has a control plane of its own, ends with every
//! parent converged, no duplicate and no orphaned child, and prints its
//! figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use sous_tests::envtest;
use sous_tests::host::TestHost;

use crate::Env;
use crate::support::{CONVERGE, World, condition_is, my_app};

/// Creates MyApp parents `names`, retrying each until the API server takes
/// it (it may be down meanwhile).
async fn create_parents(api: &Api<DynamicObject>, names: impl Iterator<Item = String>) {
    for name in names {
        let parent = my_app(&name, 1);
        while api
            .patch(
                &name,
                &PatchParams::apply("e2e-user").force(),
                &Patch::Apply(&parent),
            )
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits until `count` MyApp parents are Ready, and returns when.
async fn all_ready(world: &World, count: usize, timeout: Duration) -> Instant {
    world
        .wait_count(
            "parents Ready",
            ("example.sous.dev/v1", "MyApp"),
            count,
            timeout,
            |parent| condition_is(parent, "Ready", "True", None),
        )
        .await
}

/// Checks that every parent has exactly one Deployment and one Service of
/// its name, and that no child is without its parent; returns the number of
/// children.
async fn no_duplicates_or_orphans(world: &World) -> usize {
    let parents: Vec<String> = world
        .list("example.sous.dev/v1", "MyApp")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let mut children = 0;
    for (api_version, kind) in [("apps/v1", "Deployment"), ("v1", "Service")] {
        let mut by_parent: BTreeMap<String, usize> = BTreeMap::new();
        for child in world.list(api_version, kind).await {
            let name = child.metadata.name.clone().unwrap_or_default();
            assert!(parents.contains(&name), "orphaned {kind} {name}");
            *by_parent.entry(name).or_default() += 1;
            children += 1;
        }
        for parent in &parents {
            assert_eq!(by_parent.get(parent), Some(&1), "{kind}s of {parent}");
        }
    }
    children
}

/// The my-app world with a host serving it, `before` parents created, and
/// `during` more being created in the background (retried while the control
/// plane is down) when it returns.
async fn while_creating(
    world: &World,
    host: &str,
    before: usize,
    during: usize,
) -> (TestHost, Api<DynamicObject>, tokio::task::JoinHandle<()>) {
    let host = world.host(host);
    world.wait_reconciler("my-app", "Ready", "True", None).await;
    let api = world.api("example.sous.dev/v1", "MyApp").await;
    create_parents(&api, (0..before).map(|i| format!("app-{i}"))).await;
    let creating = {
        let api = api.clone();
        tokio::spawn(async move {
            create_parents(&api, (before..before + during).map(|i| format!("app-{i}"))).await;
        })
    };
    (host, api, creating)
}

/// kube-apiserver is killed for 20 s while 200 parents are being created,
/// then 100 more are created right after it returns: all are Ready within
/// 15 s of its return.
pub async fn apiserver_outage(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let (_host, api, creating) = while_creating(&world, "outage", 100, 100).await;
    world.cluster.stop_apiserver()?;
    let outage = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    world.cluster.start_apiserver().await?;
    let returned = Instant::now();
    println!(
        "e2e: faults: kube-apiserver down for {:.1} s",
        (returned - outage).as_secs_f64()
    );
    creating.await?;
    create_parents(&api, (200..300).map(|i| format!("app-{i}"))).await;
    let ready = all_ready(&world, 300, CONVERGE * 3).await;
    let took = ready - returned;
    let children = no_duplicates_or_orphans(&world).await;
    println!(
        "e2e: faults: apiserver outage: 300 parents Ready {:.1} s after its return; {} passes; {children} children, 0 duplicates, 0 orphans",
        took.as_secs_f64(),
        world.reconciles("my-app").await
    );
    assert!(
        took <= Duration::from_secs(15),
        "{took:?} after the API server returned"
    );
    Ok(())
}

/// etcd is killed and started again under the API server while parents are
/// being created: all converge.
pub async fn etcd_restart(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let (_host, _api, creating) = while_creating(&world, "etcd", 50, 50).await;
    world.cluster.restart_etcd().await?;
    let restarted = Instant::now();
    creating.await?;
    let ready = all_ready(&world, 100, CONVERGE * 3).await;
    let children = no_duplicates_or_orphans(&world).await;
    println!(
        "e2e: faults: etcd restart: 100 parents Ready {:.1} s after etcd returned; {} passes; {children} children, 0 duplicates, 0 orphans",
        (ready - restarted).as_secs_f64(),
        world.reconciles("my-app").await
    );
    Ok(())
}

/// The host is killed (as SIGKILL would: nothing released) in the middle of
/// its passes, again and again, while parents change: a new host converges
/// every parent with no duplicate or orphan.
pub async fn host_killed_mid_pass(env: Env) -> anyhow::Result<()> {
    const ROUNDS: usize = 6;
    let world = World::with_my_app(env).await;
    let api = world.api("example.sous.dev/v1", "MyApp").await;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let host = world.host(&format!("killed-{round}"));
        // New parents, and a change to the ones before.
        create_parents(
            &api,
            (round * 10..round * 10 + 10).map(|i| format!("app-{i}")),
        )
        .await;
        for i in 0..round * 10 {
            let patch = serde_json::json!({"spec": {"replicas": round + 1}});
            api.patch(
                &format!("app-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(300 + 150 * round as u64)).await;
        host.kill();
    }
    let _host = world.host("survivor");
    all_ready(&world, ROUNDS * 10, CONVERGE * 2).await;
    // Every Deployment follows the latest spec of its parent. A killed
    // host's last request may reach the API server after a later host's
    // write (a Ready status a killed host wrote can be seen first); its
    // watch event sends the survivor to write the latest spec again.
    envtest::wait_for(
        "every Deployment at its parent's replicas",
        CONVERGE,
        || async {
            let stale: Vec<String> = stale_deployments(&world).await;
            if stale.is_empty() { Ok(()) } else { Err(stale) }
        },
    )
    .await;
    let children = no_duplicates_or_orphans(&world).await;
    println!(
        "e2e: faults: host killed {ROUNDS} times mid-pass: {} parents converged {:.1} s after the start; {children} children, 0 duplicates, 0 orphans",
        ROUNDS * 10,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Another field manager keeps changing a field the guest sets (a
/// Deployment's replicas, five times a second for 30 s): the host restores
/// it, announcing who changed it, but at most six times a minute, and has it
/// back once the fight stops.
pub async fn field_managers_fight_without_a_hot_loop(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let _host = world.host("fight");
    world.apply(my_app("web", 1)).await;
    world.wait_parent("MyApp", "web", "True", None).await;
    let deployments = world.api("apps/v1", "Deployment").await;
    let theirs = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 7},
    });
    let fight = Instant::now();
    let mut writes = 0;
    while fight.elapsed() < Duration::from_secs(30) {
        deployments
            .patch(
                "web",
                &PatchParams::apply("fighter").force(),
                &Patch::Apply(&theirs),
            )
            .await?;
        writes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restores = drift_restores(&world, "web").await;
    world
        .wait_object(
            "the replicas restored after the fight",
            "apps/v1",
            "Deployment",
            "web",
            |d| d.data["spec"]["replicas"] == 1,
        )
        .await;
    println!(
        "e2e: faults: field fight: {writes} writes by another manager in 30 s, {} restores by the host ({} announced); restored {:.1} s after the fight began",
        restores.0,
        restores.1.len(),
        fight.elapsed().as_secs_f64()
    );
    assert!(
        (1..=6).contains(&restores.0),
        "{} restores in 30 s",
        restores.0
    );
    assert!(
        restores
            .1
            .iter()
            .all(|note| note.contains("changed by fighter")),
        "{:?}",
        restores.1
    );
    Ok(())
}

/// The `DriftRestored` events of parent `name`: how many restores (a series
/// counts each) and their notes.
async fn drift_restores(world: &World, name: &str) -> (u64, Vec<String>) {
    let mut count = 0;
    let mut notes = Vec::new();
    for event in world.list("events.k8s.io/v1", "Event").await {
        if event.data["reason"] != "DriftRestored" || event.data["regarding"]["name"] != name {
            continue;
        }
        count += event.data["series"]["count"].as_u64().unwrap_or(1);
        notes.push(event.data["note"].as_str().unwrap_or_default().to_string());
    }
    (count, notes)
}

/// The API server restarts at once (its watch cache starts afresh, so every
/// watch resuming from an older resourceVersion is answered `410 Gone`) while
/// parents change right after: the host relists and applies every change,
/// once, with no duplicate or orphan.
pub async fn watches_expire_and_relist(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let _host = world.host("expiry");
    let api = world.api("example.sous.dev/v1", "MyApp").await;
    create_parents(&api, (0..50).map(|i| format!("app-{i}"))).await;
    all_ready(&world, 50, CONVERGE).await;
    world.cluster.stop_apiserver()?;
    world.cluster.start_apiserver().await?;
    let returned = Instant::now();
    for i in 0..25 {
        let patch = serde_json::json!({"spec": {"replicas": 3}});
        api.patch(
            &format!("app-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    world
        .wait_count(
            "Deployments scaled",
            ("apps/v1", "Deployment"),
            25,
            CONVERGE,
            |deployment| deployment.data["spec"]["replicas"] == 3,
        )
        .await;
    let children = no_duplicates_or_orphans(&world).await;
    println!(
        "e2e: faults: watch expiry: 25 changes made after an API server restart applied {:.1} s after its return; {children} children, 0 duplicates, 0 orphans",
        returned.elapsed().as_secs_f64()
    );
    Ok(())
}

/// API Priority and Fairness throttles the host (a priority level of its
/// own with the least concurrency, rejecting the excess with `429`) while
/// 100 parents are created: the host backs off and converges, with no busy
/// loop (requests counted by the API server's own metrics).
pub async fn throttled_by_priority_and_fairness(env: Env) -> anyhow::Result<()> {
    const PARENTS: usize = 100;
    let user = "e2e-throttled";
    let world = World::with_my_app(env).await;
    let flow = serde_json::json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": world.ns, "name": "my-app"}});
    for object in [
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        }),
        serde_json::json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
            "metadata": {"name": user},
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 1, "lendablePercent": 0,
                "limitResponse": {"type": "Reject"},
            }},
        }),
        serde_json::json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": user},
            "spec": {
                "priorityLevelConfiguration": {"name": user},
                "matchingPrecedence": 100,
                "rules": [{
                    "subjects": [{"kind": "User", "user": {"name": user}}, flow],
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }],
            },
        }),
    ] {
        world.apply(object).await;
    }
    // Enough passes at once to need more than the level's few seats.
    world
        .merge(
            "sous.dev/v1alpha1",
            "Reconciler",
            "my-app",
            serde_json::json!({"spec": {"maxConcurrentReconciles": 32}}),
        )
        .await;
    let _host = TestHost::start(
        world.cluster.config_as(user, &[]),
        sous_tests::host::options(&world.ns, "throttled", None),
    );
    world.wait_reconciler("my-app", "Ready", "True", None).await;
    let started = Instant::now();
    let api = world.api("example.sous.dev/v1", "MyApp").await;
    futures::future::join_all((0..10).map(|batch| {
        let api = api.clone();
        async move {
            create_parents(
                &api,
                (batch * 10..batch * 10 + 10).map(|i| format!("app-{i}")),
            )
            .await;
        }
    }))
    .await;
    // Throttled, convergence took 31 to 94 s in runs on a 2-core machine.
    all_ready(&world, PARENTS, CONVERGE * 5).await;
    let converged = started.elapsed();
    let children = no_duplicates_or_orphans(&world).await;
    let (dispatched, rejected) = flow_requests(&world, user).await?;
    println!(
        "e2e: faults: throttled by APF: {PARENTS} parents Ready in {:.1} s; {dispatched} requests dispatched and {rejected} rejected (429) in the host's flow; {children} children, 0 duplicates, 0 orphans",
        converged.as_secs_f64()
    );
    assert!(
        rejected > 0,
        "the host was never throttled: the trial proves nothing"
    );
    assert!(
        dispatched + rejected < 40 * PARENTS as u64,
        "{dispatched} + {rejected} requests for {PARENTS} parents: a busy loop"
    );
    world
        .delete("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", user)
        .await;
    world
        .delete(
            "flowcontrol.apiserver.k8s.io/v1",
            "PriorityLevelConfiguration",
            user,
        )
        .await;
    world
        .delete("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", user)
        .await;
    Ok(())
}

/// Requests of flow schema `schema` the API server dispatched and rejected,
/// from its `/metrics`.
async fn flow_requests(world: &World, schema: &str) -> anyhow::Result<(u64, u64)> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let metrics = world.client.request_text(request).await?;
    let sum = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|line| {
                line.starts_with(name) && line.contains(&format!("flow_schema=\"{schema}\""))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    Ok((
        sum("apiserver_flowcontrol_dispatched_requests_total"),
        sum("apiserver_flowcontrol_rejected_requests_total"),
    ))
}

/// The module is replaced while 500 parents are being reconciled: every
/// parent ends with exactly the new module's children (the old module's are
/// pruned), none is lost or duplicated.
pub async fn hot_reload_under_load(env: Env) -> anyhow::Result<()> {
    const PARENTS: usize = 500;
    let world = World::new(env).await;
    let source = world
        .upload("module", &sous_tests::guests::guest_bytes("my_app"))
        .await;
    let mut spec = crate::support::my_app_reconciler(source);
    spec["children"]
        .as_array_mut()
        .expect("children")
        .push(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"}));
    spec["maxConcurrentReconciles"] = serde_json::json!(8);
    world.reconciler("my-app", spec).await;
    let _host = world.host("reload");
    world.wait_reconciler("my-app", "Ready", "True", None).await;
    let api = world.api("example.sous.dev/v1", "MyApp").await;
    let started = Instant::now();
    futures::future::join_all((0..10).map(|batch| {
        let api = api.clone();
        async move {
            let first = batch * PARENTS / 10;
            create_parents(
                &api,
                (first..first + PARENTS / 10).map(|i| format!("app-{i}")),
            )
            .await;
        }
    }))
    .await;
    // Swap while the passes are under way.
    let hostile = sous_tests::guests::guest_bytes("hostile");
    world
        .overwrite(
            "module-part-0",
            sous::source::pack(&hostile, sous::source::MAX_PART_BYTES).remove(0),
        )
        .await;
    let swapped = Instant::now();
    world.wait_digest("my-app", &hostile).await;
    let maps = world.api("v1", "ConfigMap").await;
    envtest::wait_for(
        "every parent with the new module's child only",
        CONVERGE * 3,
        || {
            let (maps, world) = (maps.clone(), &world);
            async move {
                let outputs = maps
                    .list(&Default::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .iter()
                    .filter(|m| {
                        m.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("app-"))
                    })
                    .count();
                let old = world.list("apps/v1", "Deployment").await.len()
                    + world.list("v1", "Service").await.len();
                if outputs == PARENTS && old == 0 {
                    Ok(())
                } else {
                    Err(format!("{outputs} new children, {old} old ones left"))
                }
            }
        },
    )
    .await;
    all_ready(&world, PARENTS, CONVERGE).await;
    println!(
        "e2e: faults: hot reload under load: {PARENTS} parents on the new module {:.1} s after the swap ({:.1} s after the first creation); {} passes",
        swapped.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        world.settled_reconciles("my-app").await
    );
    Ok(())
}

/// The MyApp parents whose Deployment's replicas differ from theirs, with
/// both counts.
async fn stale_deployments(world: &World) -> Vec<String> {
    let mut stale = Vec::new();
    for parent in world.list("example.sous.dev/v1", "MyApp").await {
        let name = parent.metadata.name.clone().unwrap_or_default();
        let deployment = world.get("apps/v1", "Deployment", &name).await;
        let replicas = deployment.map(|d| d.data["spec"]["replicas"].clone());
        if replicas.as_ref() != Some(&parent.data["spec"]["replicas"]) {
            stale.push(format!(
                "{name}: {replicas:?} for {}",
                parent.data["spec"]["replicas"]
            ));
        }
    }
    stale
}
