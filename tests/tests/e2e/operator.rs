//! The operator scenarios of the in-cluster host, each against the real API
//! server with a host of its own serving its own namespace.

use std::time::{Duration, Instant};

use serde_json::json;
use sous_tests::envtest;
use sous_tests::guests::guest_bytes;

use crate::Env;
use crate::support::{
    CONVERGE, World, condition_field, condition_is, digest, hostile, http_get, my_app,
    my_app_reconciler,
};

/// CRD + module + Reconciler + MyApp -> owned, labelled Deployment and
/// Service, the parent's status and `Ready`, the Reconciler `Ready` with the
/// module's digest.
pub async fn my_app_converges(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let module = guest_bytes("my_app");
    let source = world.upload("my-app", &module).await;
    world.reconciler("my-app", my_app_reconciler(source)).await;
    let (_host, endpoints) = world.host_with_endpoints("converge");
    let reconciler = world
        .wait_reconciler("my-app", "Ready", "True", Some("Running"))
        .await;
    assert_eq!(reconciler.data["status"]["moduleDigest"], digest(&module));
    assert!(condition_is(
        &reconciler,
        "ModuleReady",
        "True",
        Some("Loaded")
    ));

    let created = Instant::now();
    world.apply(my_app("web", 3)).await;
    let parent = world
        .wait_parent("MyApp", "web", "True", Some("Reconciled"))
        .await;
    eprintln!(
        "e2e: one MyApp parent Ready {} ms after creation",
        created.elapsed().as_millis()
    );
    let uid = parent.metadata.uid.clone().unwrap();
    // No kubelet runs here: the Deployment never gets ready replicas.
    let phase = parent.data["status"]["phase"].as_str().unwrap_or_default();
    assert!(
        ["Pending", "Progressing"].contains(&phase),
        "{:?}",
        parent.data["status"]
    );
    assert_eq!(parent.data["status"]["readyReplicas"], 0);
    for (api_version, kind) in [("apps/v1", "Deployment"), ("v1", "Service")] {
        let child = world
            .get(api_version, kind, "web")
            .await
            .expect("child exists");
        let labels = child.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels["sous.dev/reconciler"],
            format!("{}.my-app", world.ns)
        );
        assert_eq!(labels["sous.dev/parent-uid"], uid);
        let owner = &child.metadata.owner_references.clone().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            (uid.as_str(), Some(true))
        );
    }
    let deployment = world.get("apps/v1", "Deployment", "web").await.unwrap();
    assert_eq!(deployment.data["spec"]["replicas"], 3);
    assert_eq!(
        deployment.data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    // The endpoints report it.
    assert_eq!(http_get(endpoints, "/healthz").await.0, 200);
    assert_eq!(http_get(endpoints, "/readyz").await.0, 200);
    let label = format!("reconciler=\"{}.my-app\"", world.ns);
    // The pass records its metrics just after it writes the status.
    envtest::wait_for("the pass in /metrics", CONVERGE, || async {
        let (status, metrics) = http_get(endpoints, "/metrics").await;
        let missing: Vec<_> = [
            "sous_reconciles_total",
            "sous_guest_call_duration_seconds_count",
            "sous_reconcile_duration_seconds_count",
        ]
        .into_iter()
        .filter(|series| {
            !metrics
                .lines()
                .any(|l| l.starts_with(series) && l.contains(&label))
        })
        .collect();
        if status == 200 && missing.is_empty() && metrics.contains("sous_modules_loaded 1") {
            Ok(())
        } else {
            Err(format!("{status}, missing {missing:?} in:\n{metrics}"))
        }
    })
    .await;
    Ok(())
}

/// The children follow the parent; a deleted child comes back; a field the
/// guest owns, edited by someone else, is restored.
pub async fn children_follow_the_parent(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let _host = world.host("follow");
    world.apply(my_app("web", 1)).await;
    world.wait_parent("MyApp", "web", "True", None).await;

    world
        .merge(
            "example.sous.dev/v1",
            "MyApp",
            "web",
            json!({"spec": {"replicas": 4}}),
        )
        .await;
    world
        .wait_object(
            "Deployment with 4 replicas",
            "apps/v1",
            "Deployment",
            "web",
            |d| d.data["spec"]["replicas"] == 4,
        )
        .await;

    let before = world
        .get("apps/v1", "Deployment", "web")
        .await
        .unwrap()
        .metadata
        .uid;
    world.delete("apps/v1", "Deployment", "web").await;
    world
        .wait_object(
            "Deployment recreated",
            "apps/v1",
            "Deployment",
            "web",
            |d| d.metadata.uid != before,
        )
        .await;

    world
        .merge(
            "apps/v1",
            "Deployment",
            "web",
            json!({"spec": {"replicas": 9}}),
        )
        .await;
    world
        .wait_object(
            "edited replicas restored to 4",
            "apps/v1",
            "Deployment",
            "web",
            |d| d.data["spec"]["replicas"] == 4,
        )
        .await;
    Ok(())
}

/// Children no longer desired are pruned; an object that only looks like a
/// child is never touched.
pub async fn undesired_children_are_pruned(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("hostile", &guest_bytes("hostile")).await;
    world
        .reconciler("many", hostile_reconciler(source, json!({})))
        .await;
    let _host = world.host("prune");
    let label = format!("{}.many", world.ns);
    // Labelled like a child of this reconciler, but owned by nobody.
    world
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "lookalike", "labels": {"sous.dev/reconciler": label, "sous.dev/parent-uid": "x"}},
        }))
        .await;
    world
        .apply(hostile("fleet", "many", json!({"count": 3})))
        .await;
    world.wait_parent("Hostile", "fleet", "True", None).await;
    for index in 0..3 {
        assert!(
            world
                .get("v1", "ConfigMap", &format!("fleet-{index}"))
                .await
                .is_some()
        );
    }
    world
        .merge(
            "example.sous.dev/v1",
            "Hostile",
            "fleet",
            json!({"spec": {"count": 1}}),
        )
        .await;
    world
        .wait_gone("fleet-1 pruned", "v1", "ConfigMap", "fleet-1")
        .await;
    world
        .wait_gone("fleet-2 pruned", "v1", "ConfigMap", "fleet-2")
        .await;
    assert!(
        world.get("v1", "ConfigMap", "fleet-0").await.is_some(),
        "still desired"
    );
    assert!(
        world.get("v1", "ConfigMap", "lookalike").await.is_some(),
        "not ours"
    );
    Ok(())
}

/// With `spec.finalizer`, deleting a parent calls `finalize`, then the
/// children go and the finalizer is removed.
pub async fn finalizer_cleans_up(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("my-app", &guest_bytes("my_app")).await;
    let mut spec = my_app_reconciler(source);
    spec["finalizer"] = json!(true);
    world.reconciler("my-app", spec).await;
    let _host = world.host("finalize");
    world.apply(my_app("web", 1)).await;
    let parent = world.wait_parent("MyApp", "web", "True", None).await;
    assert!(
        parent
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"sous.dev/finalizer".to_string())
    );
    world.delete("example.sous.dev/v1", "MyApp", "web").await;
    world
        .wait_gone(
            "parent deleted once finalized",
            "example.sous.dev/v1",
            "MyApp",
            "web",
        )
        .await;
    world
        .wait_gone("Deployment deleted", "apps/v1", "Deployment", "web")
        .await;
    world
        .wait_gone("Service deleted", "v1", "Service", "web")
        .await;
    let events = world.list("events.k8s.io/v1", "Event").await;
    assert!(
        events.iter().any(|e| e.data["reason"] == "Finalized"),
        "a Finalized event on the parent"
    );
    Ok(())
}

/// A new module version changes every parent's output; a corrupt upload or
/// a digest mismatch is refused and the old module keeps serving.
pub async fn modules_hot_reload(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let my_app_module = guest_bytes("my_app");
    let source = world.upload("module", &my_app_module).await;
    let mut spec = my_app_reconciler(source.clone());
    spec["children"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiVersion": "v1", "kind": "ConfigMap"}));
    world.reconciler("my-app", spec.clone()).await;
    let _host = world.host("reload");
    for name in ["one", "two"] {
        world.apply(my_app(name, 1)).await;
        world.wait_parent("MyApp", name, "True", None).await;
    }

    // v2: the hostile guest's harmless answer, one ConfigMap per parent.
    let hostile_module = guest_bytes("hostile");
    world
        .overwrite(
            "module-part-0",
            sous::source::pack(&hostile_module, usize::MAX).remove(0),
        )
        .await;
    world.wait_digest("my-app", &hostile_module).await;
    for name in ["one", "two"] {
        world
            .wait_object(
                "new output",
                "v1",
                "ConfigMap",
                &format!("{name}-0"),
                |_| true,
            )
            .await;
        world
            .wait_gone("old output pruned", "apps/v1", "Deployment", name)
            .await;
    }
    // A corrupt upload: refused, v2 keeps serving new parents.
    world
        .overwrite("module-part-0", b"\0asm garbage, not a component".to_vec())
        .await;
    let refused = world
        .wait_reconciler("my-app", "ModuleReady", "False", None)
        .await;
    let message = condition_field(&refused, "ModuleReady", "message");
    assert!(
        message.contains("previous module keeps serving"),
        "{message}"
    );
    assert_eq!(
        refused.data["status"]["moduleDigest"],
        digest(&hostile_module)
    );
    world.apply(my_app("three", 1)).await;
    world
        .wait_object(
            "old module still serving",
            "v1",
            "ConfigMap",
            "three-0",
            |_| true,
        )
        .await;

    // A pin that does not match: even a valid module is refused.
    spec["module"]["sha256"] = json!("0".repeat(64));
    world.reconciler("my-app", spec).await;
    world
        .overwrite(
            "module-part-0",
            sous::source::pack(&my_app_module, usize::MAX).remove(0),
        )
        .await;
    let mismatch = digest(&my_app_module);
    let pinned = world
        .wait_object(
            "my-app's digest refused by the pin",
            "sous.dev/v1alpha1",
            "Reconciler",
            "my-app",
            |r| {
                condition_is(r, "ModuleReady", "False", Some("DigestMismatch"))
                    && condition_field(r, "ModuleReady", "message").contains(&mismatch)
            },
        )
        .await;
    assert_eq!(
        pinned.data["status"]["moduleDigest"],
        digest(&hostile_module)
    );
    Ok(())
}

/// Hostile guests fail their own parents only: status and events say why,
/// nothing forbidden is written, other parents and reconcilers converge.
pub async fn hostile_guests_are_contained(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let hostile_source = world.upload("hostile", &guest_bytes("hostile")).await;
    let policy = json!({"timeoutMs": 500, "maxMemoryMib": 64});
    world
        .reconciler("hostile", hostile_reconciler(hostile_source, policy))
        .await;
    let my_app_source = world.upload("my-app", &guest_bytes("my_app")).await;
    world
        .reconciler("my-app", my_app_reconciler(my_app_source))
        .await;
    let _host = world.host("hostile");
    for (name, attack) in [
        ("spin", "loop"),
        ("hog", "memory"),
        ("escalate", "forbidden"),
        ("calm", "none"),
    ] {
        world.apply(hostile(name, attack, json!({}))).await;
    }
    world.apply(my_app("web", 1)).await;

    world.wait_parent("Hostile", "calm", "True", None).await;
    world.wait_parent("MyApp", "web", "True", None).await;
    let spin = world.wait_parent("Hostile", "spin", "False", None).await;
    let reason = condition_field(&spin, "Ready", "reason");
    assert!(
        ["OutOfFuel", "DeadlineExceeded"].contains(&reason.as_str()),
        "{reason}"
    );
    world
        .wait_parent("Hostile", "hog", "False", Some("MemoryLimitExceeded"))
        .await;
    let escalate = world
        .wait_parent("Hostile", "escalate", "False", Some("InvalidResponse"))
        .await;
    assert!(condition_field(&escalate, "Ready", "message").contains("ClusterRoleBinding"));
    let bindings = world
        .list("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
        .await;
    assert!(bindings.iter().all(|b| {
        !b.metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .contains("escalate")
    }));
    let events = world.list("events.k8s.io/v1", "Event").await;
    assert!(
        events
            .iter()
            .any(|e| e.data["reason"] == "MemoryLimitExceeded" && e.data["type"] == "Warning")
    );
    Ok(())
}

/// A reconciler whose ServiceAccount may read but not create Services cannot
/// create one; the refusal is in the parent's status.
pub async fn impersonation_bounds_writes(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let deployer = json!({"kind": "ServiceAccount", "name": "deployer", "namespace": world.ns});
    world
        .bind(
            "deployer",
            deployer,
            json!([
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["example.sous.dev"], "resources": ["myapps"], "verbs": ["get", "list", "watch"]},
            ]),
        )
        .await;
    let source = world.upload("my-app", &guest_bytes("my_app")).await;
    let mut spec = my_app_reconciler(source);
    spec["serviceAccountName"] = json!("deployer");
    world.reconciler("my-app", spec).await;
    let _host = world.host("impersonate");
    world.apply(my_app("web", 1)).await;
    world.wait_services_forbidden("web", "deployer").await;
    Ok(())
}

/// A host killed mid-run and started again converges with no duplicate or
/// orphaned children.
pub async fn restart_converges_without_duplicates(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let host = world.host("first");
    for name in ["a", "b", "c"] {
        world.apply(my_app(name, 1)).await;
    }
    world.wait_parent("MyApp", "a", "True", None).await;
    host.kill();
    world
        .merge(
            "example.sous.dev/v1",
            "MyApp",
            "b",
            json!({"spec": {"replicas": 2}}),
        )
        .await;
    world.delete("example.sous.dev/v1", "MyApp", "c").await;
    world.apply(my_app("d", 1)).await;
    let _host = world.host("second");
    for name in ["a", "b", "d"] {
        world.wait_parent("MyApp", name, "True", None).await;
    }
    world
        .wait_object(
            "b scaled after the restart",
            "apps/v1",
            "Deployment",
            "b",
            |d| d.data["spec"]["replicas"] == 2,
        )
        .await;
    if world.cluster.has_controller_manager() {
        world
            .wait_gone("c's Deployment collected", "apps/v1", "Deployment", "c")
            .await;
    }
    let parents: Vec<String> = world
        .list("example.sous.dev/v1", "MyApp")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    for kind in [("apps/v1", "Deployment"), ("v1", "Service")] {
        let mut names = Vec::new();
        for child in world.list(kind.0, kind.1).await {
            let name = child.metadata.name.clone().unwrap_or_default();
            if name == "kubernetes" || (name == "c" && !world.cluster.has_controller_manager()) {
                continue;
            }
            let owners = child.metadata.owner_references.clone().unwrap_or_default();
            assert_eq!(owners.len(), 1, "{} {name} has one owner", kind.1);
            assert!(
                parents.contains(&owners[0].uid),
                "{} {name} is owned by a live parent",
                kind.1
            );
            names.push(name);
        }
        names.sort();
        assert_eq!(names, ["a", "b", "d"], "{}s after the restart", kind.1);
    }
    Ok(())
}

/// Reports the time from creation to Ready of 100 parents created at once.
pub async fn hundred_parents(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let _host = world.host("hundred");
    world.wait_reconciler("my-app", "Ready", "True", None).await;
    let started = Instant::now();
    futures::future::join_all((0..100).map(|i| {
        let world = &world;
        async move { world.apply(my_app(&format!("app-{i}"), 1)).await }
    }))
    .await;
    world
        .wait_count(
            "parents Ready",
            ("example.sous.dev/v1", "MyApp"),
            100,
            CONVERGE * 3,
            |parent| condition_is(parent, "Ready", "True", None),
        )
        .await;
    eprintln!(
        "e2e: 100 MyApp parents created at once all Ready after {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// After 20 parents converge, no further guest calls happen.
pub async fn steady_state_costs_no_calls(env: Env) -> anyhow::Result<()> {
    let world = World::with_my_app(env).await;
    let _host = world.host("steady");
    for i in 0..20 {
        world.apply(my_app(&format!("app-{i}"), 1)).await;
    }
    for i in 0..20 {
        world
            .wait_parent("MyApp", &format!("app-{i}"), "True", None)
            .await;
    }
    // Let the tail of the convergence (Deployment status updates) pass.
    let settled = world.settled_reconciles("my-app").await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let reconciler = world
        .get("sous.dev/v1alpha1", "Reconciler", "my-app")
        .await
        .unwrap();
    assert_eq!(
        reconciler.data["status"]["reconciles"].as_u64(),
        Some(settled),
        "guest calls while nothing changed"
    );
    Ok(())
}

/// A missing parent CRD is reported and retried, not fatal.
pub async fn missing_parent_kind_is_retried(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("my-app", &guest_bytes("my_app")).await;
    let mut spec = my_app_reconciler(source);
    spec["parent"] = json!({"apiVersion": "late.sous.dev/v1", "kind": "Late"});
    world.reconciler("late", spec).await;
    let _host = world.host("missing");
    world
        .wait_reconciler("late", "Ready", "False", Some("ParentKindNotFound"))
        .await;
    let crd = sous_tests::fixtures::MYAPP_CRD
        .replace("example.sous.dev", "late.sous.dev")
        .replace("myapps", "lates")
        .replace("MyAppList", "LateList")
        .replace("MyApp", "Late")
        .replace("myapp", "late");
    envtest::apply_yaml(&world.client, &crd, None).await?;
    world
        .wait_reconciler("late", "Ready", "True", Some("Running"))
        .await;
    Ok(())
}

/// The spec of a Hostile Reconciler (ConfigMap children) using `module`
/// under `policy`.
pub fn hostile_reconciler(
    module: serde_json::Value,
    policy: serde_json::Value,
) -> serde_json::Value {
    json!({
        "parent": {"apiVersion": "example.sous.dev/v1", "kind": "Hostile"},
        "children": [{"apiVersion": "v1", "kind": "ConfigMap"}],
        "module": module,
        "policy": policy,
    })
}

/// A module over 1 MiB even compressed loads from several ConfigMaps.
pub async fn large_module_loads_from_parts(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let module = crate::support::padded(&guest_bytes("my_app"), 3 << 20);
    let source = world.upload("big", &module).await;
    let parts = source["parts"].as_array().unwrap().len();
    assert!(
        parts >= 3,
        "a 3 MiB incompressible module needs several ConfigMaps, got {parts}"
    );
    world.reconciler("my-app", my_app_reconciler(source)).await;
    let _host = world.host("large");
    world.wait_digest("my-app", &module).await;
    world.apply(my_app("web", 1)).await;
    world.wait_parent("MyApp", "web", "True", None).await;
    Ok(())
}

/// The Python `my-app` (an 18 MiB component carrying CPython) goes up
/// compressed and split over several ConfigMaps, loads, and reconciles a
/// parent exactly like the Rust one: Deployment and Service, `Ready`.
pub async fn python_my_app_from_config_map_parts(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let module = std::fs::read(sous_tests::guests::component("python", "my-app"))?;
    let source = world.upload("python", &module).await;
    let parts = source["parts"].as_array().unwrap().len();
    assert!(
        parts >= 2,
        "an 18 MiB Python component needs several ConfigMaps, got {parts}"
    );
    world.reconciler("my-app", my_app_reconciler(source)).await;
    let _host = world.host("python");
    world.wait_digest("my-app", &module).await;
    world.apply(my_app("web", 2)).await;
    let parent = world
        .wait_parent("MyApp", "web", "True", Some("Reconciled"))
        .await;
    assert_eq!(parent.data["status"]["readyReplicas"], 0);
    let deployment = world
        .get("apps/v1", "Deployment", "web")
        .await
        .expect("Deployment");
    assert_eq!(deployment.data["spec"]["replicas"], 2);
    assert!(world.get("v1", "Service", "web").await.is_some(), "Service");
    Ok(())
}

/// A leader whose Lease is taken from it (frozen past its renew deadline,
/// an API server blip) exits with an error, health server and all, so that
/// its pod is restarted as a candidate: never alive and healthy while
/// reconciling nothing.
pub async fn a_leader_that_loses_its_lease_exits(env: Env) -> anyhow::Result<()> {
    use sous::leader::LeaseTiming;
    let world = World::with_my_app(env).await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut options = sous_tests::host::options(
        &world.ns,
        "host-a",
        Some(LeaseTiming::scaled(Duration::from_secs(3))),
    );
    options.health_addr = Some(addr);
    let host = sous_tests::host::TestHost::start(world.config(), options);
    world.apply(my_app("led", 1)).await;
    world.wait_parent("MyApp", "led", "True", None).await;
    let stolen = Instant::now();
    world
        .merge(
            "coordination.k8s.io/v1",
            "Lease",
            sous::operator::LEASE_NAME,
            json!({"spec": {
                "holderIdentity": "intruder",
                "leaseDurationSeconds": 600,
                "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now()),
            }}),
        )
        .await;
    envtest::wait_for("the host that lost its Lease to exit", CONVERGE, || async {
        if host.has_ended() {
            Ok(())
        } else {
            Err(format!(
                "/healthz answers {:?}",
                http_get(addr, "/healthz").await.0
            ))
        }
    })
    .await;
    let exited = stolen.elapsed();
    let error = host.stop().expect_err("losing the Lease is an error");
    assert!(error.to_string().contains("leadership lost"), "{error:#}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the health server went with the host"
    );
    eprintln!(
        "e2e: the host exited {} ms after its Lease was taken",
        exited.as_millis()
    );
    Ok(())
}

/// Two hosts: one leads and reconciles; when it dies, the other takes over
/// within the Lease's duration.
pub async fn one_leader_among_two_hosts(env: Env) -> anyhow::Result<()> {
    use sous::leader::LeaseTiming;
    let world = World::with_my_app(env).await;
    let timing = LeaseTiming::scaled(Duration::from_secs(4));
    let start = |identity: &str| {
        sous_tests::host::TestHost::start(
            world.config(),
            sous_tests::host::options(&world.ns, identity, Some(timing)),
        )
    };
    let first = start("host-a");
    let second = start("host-b");
    world.apply(my_app("before", 1)).await;
    world.wait_parent("MyApp", "before", "True", None).await;
    let holder = || async {
        let lease = world
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                sous::operator::LEASE_NAME,
            )
            .await?;
        lease.data["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    };
    let leader = holder().await.expect("a leader holds the Lease");
    assert!(["host-a", "host-b"].contains(&leader.as_str()), "{leader}");
    let (dead, survivor) = if leader == "host-a" {
        (first, second)
    } else {
        (second, first)
    };
    let killed = Instant::now();
    dead.kill();
    let lease = world.api("coordination.k8s.io/v1", "Lease").await;
    let new_leader = envtest::wait_for("another host to take the Lease", CONVERGE, || {
        let lease = lease.clone();
        let leader = leader.clone();
        async move {
            let lease = lease
                .get(sous::operator::LEASE_NAME)
                .await
                .map_err(|e| e.to_string())?;
            match lease.data["spec"]["holderIdentity"].as_str() {
                Some(holder) if holder != leader && !holder.is_empty() => Ok(holder.to_string()),
                other => Err(format!("held by {other:?}")),
            }
        }
    })
    .await;
    let takeover = killed.elapsed();
    world.apply(my_app("after", 1)).await;
    world.wait_parent("MyApp", "after", "True", None).await;
    assert!(!survivor.has_ended(), "the survivor {new_leader} runs");
    assert!(
        takeover < Duration::from_secs(4) + CONVERGE / 6,
        "took over in {takeover:?}"
    );
    eprintln!(
        "e2e: {new_leader} took the Lease {} ms after {leader} died (Lease duration 4 s)",
        takeover.as_millis()
    );
    drop(survivor);
    Ok(())
}

/// `sous push` uploads a module and applies its Reconciler; pushing another
/// module switches every parent to it without restarting the reconciler,
/// and the old parts are deleted.
pub async fn push_uploads_and_switches_modules(env: Env) -> anyhow::Result<()> {
    let kubeconfig = env.cluster.kubeconfig_path().to_path_buf();
    let world = World::new(env).await;
    let push = |module: &str| {
        let output = sous_tests::cli::sous()
            .env("KUBECONFIG", &kubeconfig)
            .args(["push", "--name", "my-app", "--namespace", &world.ns])
            .args([
                "--module",
                &sous_tests::guests::guest(module).to_string_lossy(),
            ])
            .args(["--parent-kind", "example.sous.dev/v1/MyApp"])
            .args([
                "--child-kind",
                "apps/v1/Deployment",
                "--child-kind",
                "v1/Service",
                "--child-kind",
                "v1/ConfigMap",
            ])
            .output()
            .expect("running sous push");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    push("my_app");
    let _host = world.host("push");
    world.wait_digest("my-app", &guest_bytes("my_app")).await;
    world.apply(my_app("web", 1)).await;
    world.wait_parent("MyApp", "web", "True", None).await;
    let parts_before = world.list("v1", "ConfigMap").await.len();

    push("hostile");
    world.wait_digest("my-app", &guest_bytes("hostile")).await;
    world
        .wait_object(
            "the new module's output",
            "v1",
            "ConfigMap",
            "web-0",
            |_| true,
        )
        .await;
    world
        .wait_gone("the old module's output", "apps/v1", "Deployment", "web")
        .await;
    let reconciler = world
        .get("sous.dev/v1alpha1", "Reconciler", "my-app")
        .await
        .unwrap();
    assert_eq!(
        reconciler.data["spec"]["module"]["sha256"],
        digest(&guest_bytes("hostile"))
    );
    // One part each time: the old one was replaced, not kept; plus web-0.
    assert_eq!(world.list("v1", "ConfigMap").await.len(), parts_before + 1);
    Ok(())
}
