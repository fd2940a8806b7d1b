//! The controller patterns of `spec.children[]` and `spec.parentSelector`,
//! on a real API server: the children come from the `echo` attack of the
//! hostile guest, which answers `spec.objects` verbatim, so each trial
//! chooses exactly what is desired.

use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use sous_tests::guests::guest_bytes;

use crate::Env;
use crate::support::{CONVERGE, World, condition_field, hostile, http_get, wait_event};
use crate::tenancy::{TRIAL, tenancy_host};

/// The spec of a Reconciler of Hostile parents with `children` rules and
/// `extra` spec fields, serving the hostile guest.
async fn echo_reconciler(world: &World, name: &str, children: Value, extra: Value) {
    let source = world.upload(name, &guest_bytes("hostile")).await;
    let mut spec = json!({
        "parent": {"apiVersion": "example.sous.dev/v1", "kind": "Hostile"},
        "children": children,
        "module": source,
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    world.reconciler(name, spec).await;
}

/// A Hostile parent answering `objects` as its children, with `labels`.
fn echo(name: &str, labels: Value, objects: Value) -> Value {
    let mut parent = hostile(name, "echo", json!({"objects": objects}));
    parent["metadata"]["labels"] = labels;
    parent
}

fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"value": value}})
}

fn has_sous_marks(object: &kube::api::DynamicObject) -> bool {
    let labels = object.metadata.labels.clone().unwrap_or_default();
    labels.keys().any(|key| key.starts_with("sous.dev/"))
        || object
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|refs| !refs.is_empty())
}

/// Only parents matching `spec.parentSelector` (matchExpressions) are
/// reconciled; one whose labels stop matching is finalized and its
/// children deleted, the host's finalizer removed; a malformed selector is
/// refused in the Reconciler's status.
pub async fn parent_selector_picks_and_lets_go(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let children = json!([{"apiVersion": "v1", "kind": "ConfigMap"}]);
    echo_reconciler(
        &world,
        "bad-selector",
        children.clone(),
        json!({"parentSelector": {"matchExpressions": [{"key": "team", "operator": "Near", "values": ["x"]}]}}),
    )
    .await;
    echo_reconciler(
        &world,
        "teams",
        children,
        json!({
            "finalizer": true,
            "parentSelector": {
                "matchLabels": {"app": "shop"},
                "matchExpressions": [{"key": "team", "operator": "In", "values": ["blue", "green"]}],
            },
        }),
    )
    .await;
    let _host = world.host("selector");
    let refused = world
        .wait_reconciler("bad-selector", "Ready", "False", Some("InvalidSpec"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(message.contains("unknown operator `Near`"), "{message}");

    world
        .apply(echo(
            "blue",
            json!({"app": "shop", "team": "blue"}),
            json!([config_map("blue-conf", "1")]),
        ))
        .await;
    world
        .apply(echo(
            "red",
            json!({"app": "shop", "team": "red"}),
            json!([config_map("red-conf", "1")]),
        ))
        .await;
    let blue = world.wait_parent("Hostile", "blue", "True", None).await;
    assert!(
        blue.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "sous.dev/finalizer")
    );
    assert!(world.get("v1", "ConfigMap", "blue-conf").await.is_some());
    // The other parent is never touched: no child, no status, no finalizer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(world.get("v1", "ConfigMap", "red-conf").await.is_none());
    let red = world
        .get("example.sous.dev/v1", "Hostile", "red")
        .await
        .unwrap();
    assert!(
        red.data.get("status").is_none_or(Value::is_null),
        "{:?}",
        red.data
    );
    assert!(red.metadata.finalizers.is_none_or(|f| f.is_empty()));

    // blue leaves the selector: finalize, children deleted, finalizer gone.
    world
        .set_label(
            ("example.sous.dev/v1", "Hostile"),
            "blue",
            "team",
            Some("yellow"),
        )
        .await;
    world
        .wait_gone("blue's child deleted", "v1", "ConfigMap", "blue-conf")
        .await;
    world
        .wait_object(
            "blue's finalizer removed",
            "example.sous.dev/v1",
            "Hostile",
            "blue",
            |blue| {
                blue.metadata
                    .finalizers
                    .as_ref()
                    .is_none_or(|f| f.is_empty())
            },
        )
        .await;
    let note = wait_event(&world, "Deselected", "parentSelector").await;
    assert!(note.contains("finalize answered done"), "{note}");
    // red joins it: reconciled at once.
    world
        .set_label(
            ("example.sous.dev/v1", "Hostile"),
            "red",
            "team",
            Some("green"),
        )
        .await;
    world.wait_parent("Hostile", "red", "True", None).await;
    assert!(world.get("v1", "ConfigMap", "red-conf").await.is_some());
    Ok(())
}

/// `deletePolicy: Orphan`: a child no longer desired stays, without the
/// host's labels and ownerReference, and so do the children of a deleted
/// parent (the garbage collector has nothing to follow).
pub async fn orphaned_children_survive(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    echo_reconciler(
        &world,
        "orphans",
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "deletePolicy": "Orphan"}]),
        json!({}),
    )
    .await;
    let (_host, endpoints) = world.host_with_endpoints("orphans");
    world
        .apply(echo(
            "keeper",
            json!({}),
            json!([config_map("kept", "1"), config_map("dropped", "1")]),
        ))
        .await;
    world.wait_parent("Hostile", "keeper", "True", None).await;
    let kept = world.get("v1", "ConfigMap", "kept").await.unwrap();
    assert!(
        has_sous_marks(&kept),
        "a child carries the host's labels and ownerReference"
    );
    world
        .merge(
            "example.sous.dev/v1",
            "Hostile",
            "keeper",
            json!({"spec": {"objects": [config_map("kept", "1")]}}),
        )
        .await;
    let dropped = world
        .wait_object("dropped released", "v1", "ConfigMap", "dropped", |o| {
            !has_sous_marks(o)
        })
        .await;
    assert_eq!(dropped.data["data"]["value"], "1");
    wait_event(&world, "Released", "dropped").await;

    world
        .delete("example.sous.dev/v1", "Hostile", "keeper")
        .await;
    world
        .wait_gone(
            "the parent deleted",
            "example.sous.dev/v1",
            "Hostile",
            "keeper",
        )
        .await;
    let kept = world
        .get("v1", "ConfigMap", "kept")
        .await
        .expect("kept survives its parent");
    assert!(!has_sous_marks(&kept), "{:?}", kept.metadata);
    // The garbage collector, when it runs, finds nothing to collect.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(world.get("v1", "ConfigMap", "kept").await.is_some());
    assert!(world.get("v1", "ConfigMap", "dropped").await.is_some());
    // Two releases counted: the dropped child, then the parent's last one.
    let (_, metrics) = http_get(endpoints, "/metrics").await;
    let label = format!("{}.orphans", world.ns);
    let releases = format!(r#"sous_child_writes_total{{reconciler="{label}",action="release"}} 2"#);
    assert!(metrics.contains(&releases), "{metrics}");
    Ok(())
}

/// An existing object named like a desired child is never taken over by
/// default: `ChildExists`, and nothing of the answer is written. With
/// `adopt: IfUnowned` it is adopted, with an `Adopted` event.
pub async fn adoption_is_explicit(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    world.apply(config_map("users", "theirs")).await;
    let objects = json!([config_map("users", "ours"), config_map("sibling", "ours")]);
    echo_reconciler(
        &world,
        "adopter",
        json!([{"apiVersion": "v1", "kind": "ConfigMap"}]),
        json!({}),
    )
    .await;
    let _host = world.host("adoption");
    world.apply(echo("claim", json!({}), objects)).await;
    let refused = world
        .wait_parent("Hostile", "claim", "False", Some("ChildExists"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(
        message.contains("ConfigMap") && message.contains("/users already exists"),
        "{message}"
    );
    assert!(
        world.get("v1", "ConfigMap", "sibling").await.is_none(),
        "half an answer was written"
    );
    let users = world.get("v1", "ConfigMap", "users").await.unwrap();
    assert_eq!(users.data["data"]["value"], "theirs");
    assert!(!has_sous_marks(&users));

    echo_reconciler(
        &world,
        "adopter",
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "adopt": "IfUnowned"}]),
        json!({}),
    )
    .await;
    world.wait_parent("Hostile", "claim", "True", None).await;
    let users = world.get("v1", "ConfigMap", "users").await.unwrap();
    assert_eq!(users.data["data"]["value"], "ours");
    assert!(has_sous_marks(&users), "{:?}", users.metadata);
    assert!(world.get("v1", "ConfigMap", "sibling").await.is_some());
    wait_event(&world, "Adopted", "users").await;
    Ok(())
}

/// `Recreate` replaces a changed child (a new UID), `OnDelete` leaves a
/// changed child as it is until someone deletes it.
pub async fn update_strategies_recreate_or_wait_for_deletion(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    echo_reconciler(
        &world,
        "strategies",
        json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "updateStrategy": {"method": "Recreate"}},
            {"apiVersion": "v1", "kind": "Secret", "updateStrategy": {"method": "OnDelete"}},
        ]),
        json!({}),
    )
    .await;
    let _host = world.host("strategies");
    let objects = |version: &str| {
        json!([
            config_map("conf", version),
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"value": version}},
        ])
    };
    world.apply(echo("app", json!({}), objects("1"))).await;
    world.wait_parent("Hostile", "app", "True", None).await;
    let conf = world.get("v1", "ConfigMap", "conf").await.unwrap();
    let sec = world.get("v1", "Secret", "sec").await.unwrap();

    world
        .merge(
            "example.sous.dev/v1",
            "Hostile",
            "app",
            json!({"spec": {"objects": objects("2")}}),
        )
        .await;
    let recreated = world
        .wait_object("conf recreated", "v1", "ConfigMap", "conf", |o| {
            o.data["data"]["value"] == "2"
        })
        .await;
    assert_ne!(
        recreated.metadata.uid, conf.metadata.uid,
        "Recreate makes a new object"
    );
    let parent = world.wait_parent("Hostile", "app", "True", None).await;
    let message = condition_field(&parent, "Ready", "message");
    assert!(
        message.contains("OnDelete") && message.contains("sec"),
        "{message}"
    );
    let unchanged = world.get("v1", "Secret", "sec").await.unwrap();
    assert_eq!(unchanged.metadata.uid, sec.metadata.uid);
    assert_eq!(
        unchanged.data["data"]["value"],
        json!("MQ=="),
        "OnDelete left it at 1"
    );

    world.delete("v1", "Secret", "sec").await;
    let renewed = world
        .wait_object("sec created anew", "v1", "Secret", "sec", |o| {
            o.data["data"]["value"] == "Mg=="
        })
        .await;
    assert_ne!(renewed.metadata.uid, sec.metadata.uid);
    Ok(())
}

/// `RollingInPlace`: of three changed children, one changes at a time, the
/// next only once the changed one is ready (its observedGeneration caught
/// up and its Ready condition True): two are never mid-update at once.
pub async fn rolling_update_goes_one_at_a_time(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    echo_reconciler(
        &world,
        "rolling",
        json!([{"apiVersion": "example.sous.dev/v1", "kind": "MyApp", "updateStrategy": {"method": "RollingInPlace"}}]),
        json!({}),
    )
    .await;
    let _host = world.host("rolling");
    let shards = |replicas: u32| {
        json!(["shard-0", "shard-1", "shard-2"].map(|name| json!({
            "apiVersion": "example.sous.dev/v1", "kind": "MyApp",
            "metadata": {"name": name},
            "spec": {"image": "nginx:1.27", "replicas": replicas, "port": 8080},
        })))
    };
    world.apply(echo("fleet", json!({}), shards(1))).await;
    world.wait_parent("Hostile", "fleet", "True", None).await;
    let api = world.api("example.sous.dev/v1", "MyApp").await;
    // Plays the shards' controller: reports a shard ready at its generation.
    let report_ready = |name: &'static str| {
        let api = api.clone();
        async move {
            let shard = api.get(name).await.unwrap();
            let status = json!({"status": {
                "observedGeneration": shard.metadata.generation,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "message": "", "lastTransitionTime": "2026-12-01T00:00:00Z"}],
            }});
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                .await
                .unwrap();
        }
    };
    for name in ["shard-0", "shard-1", "shard-2"] {
        report_ready(name).await;
    }
    world
        .merge(
            "example.sous.dev/v1",
            "Hostile",
            "fleet",
            json!({"spec": {"objects": shards(2)}}),
        )
        .await;
    let mut order = Vec::new();
    let started = Instant::now();
    while order.len() < 3 {
        anyhow::ensure!(started.elapsed() < CONVERGE, "rolled {order:?} only");
        let list = api.list(&Default::default()).await?;
        let updated: Vec<String> = list
            .items
            .iter()
            .filter(|shard| shard.data["spec"]["replicas"] == 2)
            .map(|shard| shard.metadata.name.clone().unwrap())
            .collect();
        let mid_update = list
            .items
            .iter()
            .filter(|shard| {
                shard.data["status"]["observedGeneration"].as_i64() < shard.metadata.generation
            })
            .count();
        anyhow::ensure!(
            mid_update <= 1,
            "{mid_update} shards mid-update at once: {updated:?}"
        );
        if let Some(next) = updated.iter().find(|name| !order.contains(*name)) {
            order.push(next.clone());
            if order.len() < 3 {
                // The others wait while this one is not ready.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let still: usize = api
                    .list(&Default::default())
                    .await?
                    .items
                    .iter()
                    .filter(|shard| shard.data["spec"]["replicas"] == 2)
                    .count();
                anyhow::ensure!(
                    still == order.len(),
                    "{still} updated while {next} was not ready"
                );
                let parent = world
                    .get("example.sous.dev/v1", "Hostile", "fleet")
                    .await
                    .unwrap();
                let reason = condition_field(&parent, "Ready", "reason");
                anyhow::ensure!(reason == "Progressing", "Ready reason {reason} mid-rollout");
            }
            let name: &'static str = ["shard-0", "shard-1", "shard-2"]
                .into_iter()
                .find(|n| *n == next.as_str())
                .unwrap();
            report_ready(name).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(order, ["shard-0", "shard-1", "shard-2"]);
    world
        .wait_parent("Hostile", "fleet", "True", Some("Reconciled"))
        .await;
    Ok(())
}

/// A Decorator (the team-namespaces example): every Namespace labelled
/// `team` gets a default-deny NetworkPolicy and a RoleBinding of each team
/// ClusterRole (a cluster-scoped related kind); the Namespaces' status is
/// never written, and a Namespace whose label goes loses its attachments.
pub async fn decorator_attaches_to_namespaces(env: Env) -> anyhow::Result<()> {
    const DECORATED: &str = "teams.example.dev/decorated";
    let world = World::new(env).await;
    let ns = world.ns.clone();
    let role = format!("view-{ns}");
    world
        .apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": role, "labels": {"sous.dev/team-role": "true", TRIAL: ns}},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        }))
        .await;
    let module = world
        .upload("team-namespaces", &guest_bytes("team_namespaces"))
        .await;
    let name = format!("teams-{ns}");
    world
        .apply(json!({
            "apiVersion": "sous.dev/v1alpha1", "kind": "ClusterReconciler",
            "metadata": {"name": name, "labels": {TRIAL: ns}},
            "spec": {
                "mode": "Decorator",
                "parent": {"apiVersion": "v1", "kind": "Namespace"},
                "parentSelector": {
                    "matchLabels": {TRIAL: ns},
                    "matchExpressions": [{"key": "team", "operator": "Exists"}],
                },
                "children": [
                    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding"},
                ],
                "related": [{
                    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "selector": {"matchLabels": {"sous.dev/team-role": "true"}},
                }],
                "module": module,
                "policy": {"allowedNamespaces": ["*"]},
            },
        }))
        .await;
    let (payments, other) = (format!("{ns}-pay"), format!("{ns}-other"));
    world
        .namespace(&payments, json!({TRIAL: ns, "team": "payments"}))
        .await;
    world.namespace(&other, json!({TRIAL: ns})).await;
    let _host = tenancy_host(&world);
    let team = world.in_namespace(&payments);
    team.wait_object(
        "the team namespace's NetworkPolicy",
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "default-deny-ingress",
        |policy| policy.data["spec"]["policyTypes"] == json!(["Ingress"]),
    )
    .await;
    let binding = team
        .wait_object(
            "the team's RoleBinding",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &format!("team-{role}"),
            |_| true,
        )
        .await;
    assert_eq!(binding.data["subjects"][0]["name"], "team:payments");
    assert_eq!(binding.data["roleRef"]["name"], role.as_str());
    let owner = &binding.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Namespace", payments.as_str())
    );
    let reconciler = world
        .wait_object(
            "the Decorator running",
            "sous.dev/v1alpha1",
            "ClusterReconciler",
            &name,
            |r| condition_field(r, "Ready", "message").contains("decorating them"),
        )
        .await;
    assert!(reconciler.data["status"]["reconciles"].as_u64() >= Some(1));
    let decorated = world
        .wait_object(
            "the decorator's label on the namespace",
            "v1",
            "Namespace",
            &payments,
            |namespace| {
                namespace
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(DECORATED))
                    .map(String::as_str)
                    == Some("true")
            },
        )
        .await;
    assert!(
        decorated.data["status"].get("conditions").is_none(),
        "a decorated object's status is not the host's: {:?}",
        decorated.data["status"]
    );
    let untouched = world.in_namespace(&other);
    assert!(
        untouched
            .get(
                "networking.k8s.io/v1",
                "NetworkPolicy",
                "default-deny-ingress"
            )
            .await
            .is_none()
    );

    // The label goes: so do the attachments.
    world
        .set_label(("v1", "Namespace"), &payments, "team", None)
        .await;
    team.wait_gone(
        "the NetworkPolicy of a namespace that left",
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "default-deny-ingress",
    )
    .await;
    team.wait_gone(
        "the RoleBinding of a namespace that left",
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &format!("team-{role}"),
    )
    .await;
    let left = world
        .wait_object(
            "the decorator's label removed",
            "v1",
            "Namespace",
            &payments,
            |namespace| {
                !namespace
                    .metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(DECORATED))
            },
        )
        .await;
    assert!(
        left.metadata.labels.as_ref().unwrap().contains_key(TRIAL),
        "labels others set stay"
    );
    for namespace in [&payments, &other] {
        world.delete("v1", "Namespace", namespace).await;
    }
    world
        .delete("sous.dev/v1alpha1", "ClusterReconciler", &name)
        .await;
    world
        .delete("rbac.authorization.k8s.io/v1", "ClusterRole", &role)
        .await;
    Ok(())
}

/// The Python secret-propagation example as a ClusterReconciler: a
/// cluster-scoped parent copies one Secret into every namespace its
/// selector matches (related Namespaces, and Secrets of every namespace);
/// with `deletePolicy: Orphan` a copy outlives both its namespace leaving
/// the selector and its parent.
pub async fn secrets_propagate_and_copies_are_released(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let ns = world.ns.clone();
    world
        .install_crd(
            "secretpropagation-crd.yaml",
            "secretpropagations.example.sous.dev",
        )
        .await;
    let python = std::fs::read(sous_tests::guests::component(
        "python",
        "secret-propagation",
    ))?;
    let module = world.upload("secret-propagation", &python).await;
    let name = format!("propagation-{ns}");
    world
        .apply(json!({
            "apiVersion": "sous.dev/v1alpha1", "kind": "ClusterReconciler",
            "metadata": {"name": name, "labels": {TRIAL: ns}},
            "spec": {
                "parent": {"apiVersion": "example.sous.dev/v1", "kind": "SecretPropagation"},
                "parentSelector": {"matchLabels": {TRIAL: ns}},
                "children": [{"apiVersion": "v1", "kind": "Secret", "deletePolicy": "Orphan"}],
                "related": [
                    {"apiVersion": "v1", "kind": "Namespace"},
                    {"apiVersion": "v1", "kind": "Secret", "namespace": "*",
                     "selector": {"matchLabels": {"sous.dev/propagate": "true"}}},
                ],
                "module": module,
                "policy": {"allowedNamespaces": ["*"], "timeoutMs": 10000},
            },
        }))
        .await;
    world
        .apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "token", "labels": {"sous.dev/propagate": "true"}},
            "stringData": {"token": "s3cret"},
        }))
        .await;
    let (apps, batch, other) = (format!("{ns}-a"), format!("{ns}-b"), format!("{ns}-c"));
    for (namespace, tier) in [
        (&apps, Some("apps")),
        (&batch, Some("apps")),
        (&other, None),
    ] {
        let mut labels = json!({TRIAL: ns});
        if let Some(tier) = tier {
            labels["tier"] = json!(tier);
        }
        world.namespace(namespace, labels).await;
    }
    let _host = tenancy_host(&world);
    world
        .apply(json!({
            "apiVersion": "example.sous.dev/v1", "kind": "SecretPropagation",
            "metadata": {"name": name, "labels": {TRIAL: ns}},
            "spec": {
                "secret": {"namespace": ns, "name": "token"},
                "namespaceSelector": {"matchLabels": {TRIAL: ns}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["apps"]}]},
            },
        }))
        .await;
    let parent = world
        .wait_object(
            "the propagation's status",
            "example.sous.dev/v1",
            "SecretPropagation",
            &name,
            |p| p.data["status"]["copies"] == 2,
        )
        .await;
    assert_eq!(parent.data["status"]["namespaces"], json!([apps, batch]));
    for namespace in [&apps, &batch] {
        let copy = world
            .in_namespace(namespace)
            .get("v1", "Secret", "token")
            .await
            .unwrap();
        assert_eq!(copy.data["data"]["token"], json!("czNjcmV0"));
        assert!(has_sous_marks(&copy));
    }
    assert!(
        world
            .in_namespace(&other)
            .get("v1", "Secret", "token")
            .await
            .is_none()
    );

    // A namespace leaves the selector: its copy is released, not deleted.
    world
        .set_label(("v1", "Namespace"), &batch, "tier", None)
        .await;
    world
        .in_namespace(&batch)
        .wait_object(
            "the copy in the namespace that left, released",
            "v1",
            "Secret",
            "token",
            |copy| !has_sous_marks(copy),
        )
        .await;
    // The parent goes: the remaining copy stays, released too.
    world
        .delete("example.sous.dev/v1", "SecretPropagation", &name)
        .await;
    world
        .wait_gone(
            "the propagation",
            "example.sous.dev/v1",
            "SecretPropagation",
            &name,
        )
        .await;
    let kept = world.in_namespace(&apps).get("v1", "Secret", "token").await;
    let kept = kept.expect("the copy outlives its parent");
    assert!(!has_sous_marks(&kept), "{:?}", kept.metadata);
    for namespace in [&apps, &batch, &other] {
        world.delete("v1", "Namespace", namespace).await;
    }
    world
        .delete("sous.dev/v1alpha1", "ClusterReconciler", &name)
        .await;
    Ok(())
}

/// A Decorator never writes its parent's status: a guest that answers one
/// anyway gets one `StatusIgnored` Warning event per parent, however many
/// passes it has; its attachments are written as usual.
pub async fn a_decorator_leaves_the_parents_status_alone(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    echo_reconciler(
        &world,
        "decorator",
        json!([{"apiVersion": "v1", "kind": "ConfigMap"}]),
        json!({"mode": "Decorator", "resyncSeconds": 1}),
    )
    .await;
    let _host = world.host("decorator");
    let mut parent = echo(
        "someone-elses",
        json!({}),
        json!([config_map("attached", "1")]),
    );
    parent["spec"]["status"] = json!({"phase": "Decorated"});
    world.apply(parent).await;
    world
        .wait_object("the attachment", "v1", "ConfigMap", "attached", |_| true)
        .await;
    wait_event(&world, "StatusIgnored", "Decorator").await;
    // Several more passes (resync every second): still no status, one event.
    let before = world.reconciles("decorator").await;
    let started = Instant::now();
    while world.reconciles("decorator").await < before + 3 {
        anyhow::ensure!(started.elapsed() < CONVERGE, "no resync passes");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let parent = world
        .get("example.sous.dev/v1", "Hostile", "someone-elses")
        .await
        .unwrap();
    assert!(
        parent.data.get("status").is_none_or(Value::is_null),
        "{:?}",
        parent.data["status"]
    );
    let events = world.list("events.k8s.io/v1", "Event").await;
    let ignored: Vec<_> = events
        .iter()
        .filter(|e| e.data["reason"] == "StatusIgnored")
        .collect();
    assert_eq!(ignored.len(), 1);
    assert!(
        ignored[0].data["series"].is_null(),
        "the event was repeated: {:?}",
        ignored[0].data
    );
    Ok(())
}

/// A parent that leaves the selector while no host runs is let go of when
/// a host starts: its children are deleted, the host's finalizer removed.
pub async fn a_parent_that_left_while_the_host_was_away_is_let_go(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    echo_reconciler(
        &world,
        "away",
        json!([{"apiVersion": "v1", "kind": "ConfigMap"}]),
        json!({"finalizer": true, "parentSelector": {"matchLabels": {"selected": "yes"}}}),
    )
    .await;
    let host = world.host("away-1");
    world
        .apply(echo(
            "leaver",
            json!({"selected": "yes"}),
            json!([config_map("leaver-conf", "1")]),
        ))
        .await;
    world.wait_parent("Hostile", "leaver", "True", None).await;
    host.stop()?;
    world
        .set_label(
            ("example.sous.dev/v1", "Hostile"),
            "leaver",
            "selected",
            Some("no"),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        world.get("v1", "ConfigMap", "leaver-conf").await.is_some(),
        "no host, no change"
    );
    let _host = world.host("away-2");
    world
        .wait_gone(
            "the child of a parent that left while no host ran",
            "v1",
            "ConfigMap",
            "leaver-conf",
        )
        .await;
    world
        .wait_object(
            "its finalizer removed",
            "example.sous.dev/v1",
            "Hostile",
            "leaver",
            |p| p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty()),
        )
        .await;
    Ok(())
}

/// The JavaScript app-config example: its ConfigMap is immutable, so with
/// the default `InPlace` method a change of data is refused by the API
/// server (`Invalid`, nothing written), and with `Recreate` the ConfigMap
/// is deleted and created anew with the new data.
pub async fn immutable_config_is_recreated(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    world
        .install_crd("appconfig-crd.yaml", "appconfigs.example.sous.dev")
        .await;
    let js = std::fs::read(sous_tests::guests::component("js", "app-config"))?;
    let module = world.upload("app-config", &js).await;
    let spec = |method: &str| {
        json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "AppConfig"},
            "children": [{"apiVersion": "v1", "kind": "ConfigMap", "updateStrategy": {"method": method}}],
            "module": module,
            "policy": {"timeoutMs": 10000},
        })
    };
    world.reconciler("app-config", spec("InPlace")).await;
    let _host = world.host("app-config");
    let app_config = |rate: &str| {
        json!({
            "apiVersion": "example.sous.dev/v1", "kind": "AppConfig",
            "metadata": {"name": "checkout"},
            "spec": {"data": {"CURRENCY": "EUR", "TAX_RATE": rate}},
        })
    };
    world.apply(app_config("0.21")).await;
    world
        .wait_parent("AppConfig", "checkout", "True", None)
        .await;
    let first = world
        .get("v1", "ConfigMap", "checkout-config")
        .await
        .unwrap();
    assert_eq!(first.data["immutable"], true);

    world.apply(app_config("0.19")).await;
    let refused = world
        .wait_parent("AppConfig", "checkout", "False", Some("Invalid"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(message.contains("immutable"), "{message}");
    let kept = world
        .get("v1", "ConfigMap", "checkout-config")
        .await
        .unwrap();
    assert_eq!(kept.data["data"]["TAX_RATE"], "0.21");

    world.reconciler("app-config", spec("Recreate")).await;
    let recreated = world
        .wait_object(
            "the ConfigMap recreated",
            "v1",
            "ConfigMap",
            "checkout-config",
            |cm| cm.data["data"]["TAX_RATE"] == "0.19",
        )
        .await;
    assert_ne!(recreated.metadata.uid, first.metadata.uid);
    assert_eq!(recreated.data["immutable"], true);
    world
        .wait_parent("AppConfig", "checkout", "True", None)
        .await;
    Ok(())
}
