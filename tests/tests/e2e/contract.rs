//! What `sous:reconciler@0.2.0` added, on a real API server: the parent's
//! labels and annotations, patches to objects the reconciler does not own,
//! related requests (served, refused when undeclared, triggering only their
//! requesters, or not settling), and a 0.1.0 component beside a 0.2.0 one.
//! The 0.2.0 answers come from the Go testing guest `every-field`, which
//! echoes its parent's spec into each new field.

use kube::api::DynamicObject;
use serde_json::{Value, json};
use sous_tests::guests::{component, guest_bytes};

use crate::Env;
use crate::support::{World, condition_field, hostile, my_app, my_app_reconciler, wait_event};

/// A Reconciler of EveryField parents serving every-field, owning
/// ConfigMaps and reading ConfigMaps on request.
async fn every_field_reconciler(world: &World) -> anyhow::Result<()> {
    world
        .install_crd("everyfield-crd.yaml", "everyfields.example.sous.dev")
        .await;
    patching_reconciler(
        world,
        ("go", "every-field"),
        json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "EveryField"},
            "children": [{"apiVersion": "v1", "kind": "ConfigMap"}],
            "related": [{"apiVersion": "v1", "kind": "ConfigMap", "onRequest": true}],
        }),
        ("", "configmaps"),
    )
    .await
}

/// Applies Reconciler `name` with `spec`, serving the component `name` of
/// `language`, and lets its ServiceAccount patch `(group, resource)`:
/// `sous push` grants related kinds reading only, patching is the user's to
/// grant.
async fn patching_reconciler(
    world: &World,
    (language, name): (&str, &str),
    mut spec: Value,
    (group, resource): (&str, &str),
) -> anyhow::Result<()> {
    let module = std::fs::read(component(language, name))?;
    spec["module"] = world.upload(name, &module).await;
    world.reconciler(name, spec).await;
    world
        .bind(
            &format!("{name}-patches"),
            json!({"kind": "ServiceAccount", "name": name, "namespace": world.ns}),
            json!([{"apiGroups": [group], "resources": [resource], "verbs": ["patch"]}]),
        )
        .await;
    Ok(())
}

fn every_field(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "example.sous.dev/v1", "kind": "EveryField",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn labels(object: &DynamicObject) -> std::collections::BTreeMap<String, String> {
    object.metadata.labels.clone().unwrap_or_default()
}

/// The parent's labels and annotations are applied as complete sets (a key
/// dropped is removed, a key someone else set stays); a patch sets fields of
/// an object the reconciler does not own and never creates one; a related
/// request is served from the caches, a change of the requested object
/// triggers the parent; an undeclared kind is refused.
pub async fn the_fields_of_0_2_reach_the_cluster(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    every_field_reconciler(&world).await?;
    world
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "target"}, "data": {"owner": "someone"}}))
        .await;
    let patch = |value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "target"}, "data": {"patched": value}})
    };
    let missing = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "nobody-made-me"}, "data": {"x": "y"}});
    let request = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "settings"});
    let _host = world.host("contract");
    world
        .apply(every_field(
            "ef",
            json!({
                "labels": {"team": "a", "tier": "front"},
                "annotations": {"example.dev/note": "set by a reconciler"},
                "patches": [patch("yes"), missing],
                "relatedRequests": [request],
            }),
        ))
        .await;
    world.wait_parent("EveryField", "ef", "True", None).await;
    world
        .set_label(
            ("example.sous.dev/v1", "EveryField"),
            "ef",
            "owner",
            Some("me"),
        )
        .await;
    let parent = world
        .wait_object(
            "the parent's labels",
            "example.sous.dev/v1",
            "EveryField",
            "ef",
            |p| labels(p).get("team").map(String::as_str) == Some("a"),
        )
        .await;
    assert_eq!(
        parent.metadata.annotations.as_ref().unwrap()["example.dev/note"],
        "set by a reconciler"
    );
    let target = world
        .wait_object(
            "the patched ConfigMap",
            "v1",
            "ConfigMap",
            "target",
            |map| map.data["data"]["patched"] == "yes",
        )
        .await;
    assert_eq!(
        target.data["data"]["owner"], "someone",
        "a patch sets only its fields"
    );
    assert!(target.metadata.owner_references.is_none());
    assert!(
        !labels(&target)
            .keys()
            .any(|key| key.starts_with("sous.dev/"))
    );
    assert!(
        world
            .get("v1", "ConfigMap", "nobody-made-me")
            .await
            .is_none()
    );
    wait_event(&world, "PatchTargetMissing", "nobody-made-me").await;
    let seen =
        |count: &'static str| move |map: &DynamicObject| map.data["data"]["related"] == count;
    world
        .wait_object(
            "no requested object yet",
            "v1",
            "ConfigMap",
            "ef-seen",
            seen("0"),
        )
        .await;

    // The requested object appears: the parent that asked is called again.
    world
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "settings"}, "data": {"colour": "blue"}}))
        .await;
    world
        .wait_object(
            "the requested object served",
            "v1",
            "ConfigMap",
            "ef-seen",
            seen("1"),
        )
        .await;

    // Dropped labels go, others' stay; a patch no longer answered leaves its
    // fields as they are.
    world
        .apply(every_field("ef", json!({"labels": {"tier": "front"}})))
        .await;
    let parent = world
        .wait_object(
            "a dropped label removed",
            "example.sous.dev/v1",
            "EveryField",
            "ef",
            |p| !labels(p).contains_key("team"),
        )
        .await;
    assert_eq!(labels(&parent).get("owner").map(String::as_str), Some("me"));
    assert_eq!(
        labels(&parent).get("tier").map(String::as_str),
        Some("front")
    );
    assert!(
        parent.metadata.annotations.as_ref().unwrap()["example.dev/note"] == "set by a reconciler",
        "annotations not answered are left alone"
    );
    let target = world.get("v1", "ConfigMap", "target").await.unwrap();
    assert_eq!(target.data["data"]["patched"], "yes");
    world
        .wait_object(
            "the request no longer served",
            "v1",
            "ConfigMap",
            "ef-seen",
            seen("0"),
        )
        .await;

    // A kind not declared in spec.related is refused, and nothing written.
    world
        .apply(every_field(
            "ef",
            json!({
                "labels": {"tier": "back"},
                "relatedRequests": [{"apiVersion": "v1", "kind": "Secret"}],
            }),
        ))
        .await;
    let refused = world
        .wait_parent("EveryField", "ef", "False", Some("InvalidResponse"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(
        message.contains("not declared in `spec.related`"),
        "{message}"
    );
    let parent = world
        .get("example.sous.dev/v1", "EveryField", "ef")
        .await
        .unwrap();
    assert_eq!(
        labels(&parent).get("tier").map(String::as_str),
        Some("front")
    );
    Ok(())
}

/// A guest whose related requests change on every call is stopped after
/// three calls with `RelatedNotSettled`.
pub async fn unsettled_requests_are_refused(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let source = world.upload("hostile", &guest_bytes("hostile")).await;
    world
        .reconciler(
            "hostile",
            json!({
                "parent": {"apiVersion": "example.sous.dev/v1", "kind": "Hostile"},
                "children": [{"apiVersion": "v1", "kind": "ConfigMap"}],
                "related": [{"apiVersion": "v1", "kind": "ConfigMap"}],
                "module": source,
            }),
        )
        .await;
    let _host = world.host("unsettled");
    world
        .apply(hostile("restless", "related-random", json!({})))
        .await;
    let refused = world
        .wait_parent("Hostile", "restless", "False", Some("RelatedNotSettled"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(message.contains("did not settle"), "{message}");
    assert!(world.get("v1", "ConfigMap", "restless-0").await.is_none());
    Ok(())
}

/// A component built for `sous:reconciler@0.1.0` runs unchanged beside a
/// 0.2.0 one in the same host, and the Reconciler says which contract it
/// implements.
pub async fn a_0_1_component_runs_beside_0_2(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    every_field_reconciler(&world).await?;
    let legacy = world.upload("legacy", &guest_bytes("legacy")).await;
    let mut spec = my_app_reconciler(legacy);
    spec["children"] = json!([{"apiVersion": "v1", "kind": "ConfigMap"}]);
    world.reconciler("legacy", spec).await;
    let _host = world.host("two-worlds");
    world.apply(my_app("old", 1)).await;
    world
        .apply(every_field("new", json!({"labels": {"world": "current"}})))
        .await;
    let old = world.wait_parent("MyApp", "old", "True", None).await;
    assert_eq!(old.data["status"]["servedBy"], "0.1.0");
    let map = world.get("v1", "ConfigMap", "old-legacy").await.unwrap();
    assert_eq!(map.data["data"]["image"], "nginx:1.27");
    world.wait_parent("EveryField", "new", "True", None).await;
    for (name, world_version) in [("legacy", "0.1.0"), ("every-field", "0.2.0")] {
        let reconciler = world
            .wait_object(
                "its module loaded",
                "sous.dev/v1alpha1",
                "Reconciler",
                name,
                |r| condition_field(r, "ModuleReady", "status") == "True",
            )
            .await;
        let message = condition_field(&reconciler, "ModuleReady", "message");
        assert!(
            message.contains(&format!("sous:reconciler@{world_version}")),
            "{name}: {message}"
        );
    }
    Ok(())
}

fn deployment(name: &str, app: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    })
}

fn image_of(deployment: &DynamicObject) -> &str {
    deployment.data["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

/// The Python image updater patches the Deployments its policy selects:
/// their image follows the policy, they get no owner and no host label, a
/// Deployment that stops matching keeps its last image, and deleting the
/// policy leaves every Deployment running at its last image.
pub async fn the_image_updater_patches_deployments_it_does_not_own(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    world
        .install_crd("imagepolicy-crd.yaml", "imagepolicies.example.sous.dev")
        .await;
    patching_reconciler(
        &world,
        ("python", "image-updater"),
        json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "ImagePolicy"},
            "related": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
        }),
        ("apps", "deployments"),
    )
    .await?;
    const REPO: &str = "registry.example/shop/web";
    world
        .apply(deployment("web", "web", &format!("{REPO}:1.0")))
        .await;
    world.apply(deployment("db", "db", "postgres:16")).await;
    let _host = world.host("image-updater");
    let policy = |tag: &str| {
        json!({
            "apiVersion": "example.sous.dev/v1", "kind": "ImagePolicy",
            "metadata": {"name": "web-images"},
            "spec": {"image": REPO, "tag": tag, "selector": {"matchLabels": {"app": "web"}}},
        })
    };
    world.apply(policy("2.0")).await;
    let web = world
        .wait_object(
            "web at the policy's tag",
            "apps/v1",
            "Deployment",
            "web",
            |d| image_of(d) == format!("{REPO}:2.0"),
        )
        .await;
    assert!(
        web.metadata.owner_references.is_none(),
        "a patch owns nothing"
    );
    assert!(!labels(&web).keys().any(|key| key.starts_with("sous.dev/")));
    let parent = world
        .wait_object(
            "the policy up to date",
            "example.sous.dev/v1",
            "ImagePolicy",
            "web-images",
            |p| p.data["status"]["phase"] == "UpToDate",
        )
        .await;
    assert_eq!(parent.data["status"]["matched"], 1);
    let db = world.get("apps/v1", "Deployment", "db").await.unwrap();
    assert_eq!(image_of(&db), "postgres:16");

    // web stops matching; a new matching Deployment follows the next tag,
    // web keeps the last image it was given.
    world
        .set_label(("apps/v1", "Deployment"), "web", "app", Some("legacy"))
        .await;
    world
        .apply(deployment("api", "web", &format!("{REPO}:1.0")))
        .await;
    world.apply(policy("3.0")).await;
    world
        .wait_object("api at the new tag", "apps/v1", "Deployment", "api", |d| {
            image_of(d) == format!("{REPO}:3.0")
        })
        .await;
    let web = world.get("apps/v1", "Deployment", "web").await.unwrap();
    assert_eq!(
        image_of(&web),
        format!("{REPO}:2.0"),
        "a Deployment that left is left alone"
    );

    // The policy goes; its Deployments stay at their last image.
    world
        .delete("example.sous.dev/v1", "ImagePolicy", "web-images")
        .await;
    world
        .wait_gone(
            "the policy",
            "example.sous.dev/v1",
            "ImagePolicy",
            "web-images",
        )
        .await;
    for (name, tag) in [("web", "2.0"), ("api", "3.0")] {
        let kept = world.get("apps/v1", "Deployment", name).await;
        let kept = kept.unwrap_or_else(|| panic!("{name} was deleted with the policy"));
        assert_eq!(image_of(&kept), format!("{REPO}:{tag}"));
        assert!(kept.metadata.owner_references.is_none());
    }
    Ok(())
}
