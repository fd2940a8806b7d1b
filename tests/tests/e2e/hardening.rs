//! Regressions of defects found using Sous as a new user would, each proven
//! fixed on a real API server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sous_tests::envtest;
use sous_tests::guests::guest_bytes;

use crate::Env;
use crate::operator::hostile_reconciler;
use crate::support::{World, condition_field, condition_is, hostile, my_app, my_app_reconciler};

/// A corrupt first upload is reported as such, and stays reported: no later
/// state of the reconciler's start-up overwrites the verdict (it used to
/// fall back to `Loading` in about half of the tries).
pub async fn a_bad_first_upload_stays_reported(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let names = ["bad-a", "bad-b", "bad-c", "bad-d"];
    for name in names {
        let source = world.upload(name, &garbage).await;
        world.reconciler(name, my_app_reconciler(source)).await;
    }
    let _host = world.host("bad-upload");
    for name in names {
        world
            .wait_reconciler(name, "ModuleReady", "False", Some("UnknownModuleFormat"))
            .await;
    }
    // Long enough for every reconciler to resolve its kinds and settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for name in names {
        let reconciler = world
            .get("sous.dev/v1alpha1", "Reconciler", name)
            .await
            .unwrap();
        assert!(
            condition_is(
                &reconciler,
                "ModuleReady",
                "False",
                Some("UnknownModuleFormat")
            ),
            "{name}: {:?}",
            reconciler.data["status"]
        );
        assert!(condition_is(
            &reconciler,
            "Ready",
            "False",
            Some("WaitingForModule")
        ));
    }
    Ok(())
}

/// Deleting a Reconciler that finalizes its parents releases them: their
/// `sous.dev/finalizer` goes, so deleting one later does not hang.
pub async fn deleting_a_reconciler_releases_its_parents(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("my-app", &guest_bytes("my_app")).await;
    let mut spec = my_app_reconciler(source);
    spec["finalizer"] = json!(true);
    world.reconciler("my-app", spec).await;
    let _host = world.host("release");
    for name in ["one", "two"] {
        world.apply(my_app(name, 1)).await;
    }
    for name in ["one", "two"] {
        let parent = world.wait_parent("MyApp", name, "True", None).await;
        assert!(finalizers(&parent.metadata.finalizers).contains(&"sous.dev/finalizer"));
    }
    world
        .wait_object(
            "the Reconciler's release finalizer",
            "sous.dev/v1alpha1",
            "Reconciler",
            "my-app",
            |r| finalizers(&r.metadata.finalizers).contains(&"sous.dev/release-parents"),
        )
        .await;
    world
        .delete("sous.dev/v1alpha1", "Reconciler", "my-app")
        .await;
    world
        .wait_gone(
            "the deleted Reconciler",
            "sous.dev/v1alpha1",
            "Reconciler",
            "my-app",
        )
        .await;
    for name in ["one", "two"] {
        let parent = world
            .get("example.sous.dev/v1", "MyApp", name)
            .await
            .expect("the parents stay");
        assert!(
            !finalizers(&parent.metadata.finalizers).contains(&"sous.dev/finalizer"),
            "{name} still carries the finalizer"
        );
    }
    world.delete("example.sous.dev/v1", "MyApp", "one").await;
    world
        .wait_gone(
            "a released parent deleted",
            "example.sous.dev/v1",
            "MyApp",
            "one",
        )
        .await;
    Ok(())
}

fn finalizers(list: &Option<Vec<String>>) -> Vec<&str> {
    list.iter().flatten().map(String::as_str).collect()
}

/// A CRD installed while its Reconciler waits for it is picked up within
/// seconds, not at the next backoff.
pub async fn a_crd_installed_later_is_picked_up_at_once(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("my-app", &guest_bytes("my_app")).await;
    let group = format!("{}.sous.dev", world.ns);
    let mut spec = my_app_reconciler(source);
    spec["parent"] = json!({"apiVersion": format!("{group}/v1"), "kind": "Late"});
    world.reconciler("late", spec).await;
    let _host = world.host("late-crd");
    world
        .wait_reconciler("late", "Ready", "False", Some("ParentKindNotFound"))
        .await;
    // Let the backoff grow past 15 s.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let crd = sous_tests::fixtures::MYAPP_CRD
        .replace("example.sous.dev", &group)
        .replace("myapps", "lates")
        .replace("MyAppList", "LateList")
        .replace("MyApp", "Late")
        .replace("myapp", "late");
    envtest::apply_yaml(&world.client, &crd, None).await?;
    let installed = Instant::now();
    world
        .wait_reconciler("late", "Ready", "True", Some("Running"))
        .await;
    let took = installed.elapsed();
    println!(
        "e2e: a CRD installed 16 s into the wait: its Reconciler running {} ms later",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    world
        .delete(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            &format!("lates.{group}"),
        )
        .await;
    Ok(())
}

/// While a parent is being finalized, its status says so.
pub async fn finalizing_parents_show_it_in_status(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("hostile", &guest_bytes("hostile")).await;
    let mut spec = hostile_reconciler(source, json!({}));
    spec["finalizer"] = json!(true);
    world.reconciler("hostile", spec).await;
    let _host = world.host("finalizing");
    world.apply(hostile("slow", "linger", json!({}))).await;
    world.wait_parent("Hostile", "slow", "True", None).await;
    world.delete("example.sous.dev/v1", "Hostile", "slow").await;
    let finalizing = world
        .wait_object(
            "the parent's status while finalizing",
            "example.sous.dev/v1",
            "Hostile",
            "slow",
            |parent| condition_is(parent, "Ready", "False", Some("Finalizing")),
        )
        .await;
    let message = condition_field(&finalizing, "Ready", "message");
    assert!(message.contains("finalize answered not done"), "{message}");
    world
        .merge(
            "example.sous.dev/v1",
            "Hostile",
            "slow",
            json!({"metadata": {"annotations": {"e2e.sous.dev/release": "now"}}}),
        )
        .await;
    world
        .wait_gone(
            "the finalized parent",
            "example.sous.dev/v1",
            "Hostile",
            "slow",
        )
        .await;
    Ok(())
}

/// Built-in objects that exist before a reconciler starts reach the guest
/// with their `apiVersion` and `kind` (list items of built-in kinds carry
/// neither).
pub async fn existing_objects_reach_the_guest_typed(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    world
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "existing", "labels": {"e2e.sous.dev/related": "yes"}},
            "data": {"before": "the reconciler"},
        }))
        .await;
    let source = world.upload("hostile", &guest_bytes("hostile")).await;
    let mut spec = hostile_reconciler(source, json!({}));
    spec["related"] = json!([{
        "apiVersion": "v1", "kind": "ConfigMap",
        "matchLabels": {"e2e.sous.dev/related": "yes"},
    }]);
    world.reconciler("hostile", spec).await;
    let _host = world.host("typed");
    world.apply(hostile("copy", "exfiltrate", json!({}))).await;
    let loot = world
        .wait_object("the guest's copy", "v1", "ConfigMap", "copy-loot", |_| true)
        .await;
    let copied: Value = serde_json::from_str(
        loot.data["data"]["object-0"]
            .as_str()
            .expect("the guest saw one related object"),
    )?;
    assert_eq!(copied["metadata"]["name"], "existing");
    assert_eq!(copied["apiVersion"], "v1", "{copied}");
    assert_eq!(copied["kind"], "ConfigMap", "{copied}");
    Ok(())
}

/// A host started on converged parents runs one pass per parent: neither
/// the children it lists nor its own writes trigger more. (It ran 18,006
/// passes for 10,000 parents.)
pub async fn a_restart_costs_one_pass_per_parent(env: Env) -> anyhow::Result<()> {
    const PARENTS: usize = 40;
    let world = World::with_my_app(env).await;
    let first = world.host("before-restart");
    for i in 0..PARENTS {
        world.apply(my_app(&format!("app-{i}"), 1)).await;
    }
    for i in 0..PARENTS {
        world
            .wait_parent("MyApp", &format!("app-{i}"), "True", None)
            .await;
    }
    let before = world.settled_reconciles("my-app").await;
    first.stop()?;
    let _second = world.host("after-restart");
    let after = world.settled_reconciles("my-app").await;
    println!(
        "e2e: {PARENTS} converged parents: {before} passes to converge, {after} passes after a restart"
    );
    assert_eq!(after, PARENTS as u64, "passes after the restart");
    Ok(())
}

/// When the API server would refuse one child of an answer (here: its name
/// is taken by an object another owner controls), nothing of the answer is
/// written, and the parent says which child and why.
pub async fn a_refused_child_writes_nothing(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let owner = world
        .apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "someone-else"}}),
        )
        .await;
    world
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "taken-1",
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "someone-else",
                    "uid": owner.metadata.uid, "controller": true,
                }],
            },
            "data": {"belongs": "to someone else"},
        }))
        .await;
    let source = world.upload("hostile", &guest_bytes("hostile")).await;
    world
        .reconciler("hostile", hostile_reconciler(source, json!({})))
        .await;
    let _host = world.host("refused");
    world
        .apply(hostile("taken", "many", json!({"count": 3})))
        .await;
    let parent = world
        .wait_parent(
            "Hostile",
            "taken",
            "False",
            Some("ChildControlledElsewhere"),
        )
        .await;
    let message = condition_field(&parent, "Ready", "message");
    assert!(
        message.contains("ConfigMap")
            && message.contains("taken-1")
            && message.contains("is controlled by ConfigMap someone-else"),
        "{message}"
    );
    for name in ["taken-0", "taken-2"] {
        assert!(
            world.get("v1", "ConfigMap", name).await.is_none(),
            "{name} was written though its sibling was refused"
        );
    }
    let taken = world.get("v1", "ConfigMap", "taken-1").await.unwrap();
    assert_eq!(taken.data["data"]["belongs"], "to someone else");
    Ok(())
}
