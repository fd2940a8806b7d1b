//! Tenancy on a real API server. A team (the tenant: RBAC only on its own
//! namespace and on Reconcilers in it) tries every way a namespaced
//! Reconciler could reach beyond that namespace, against a host running as
//! its own ServiceAccount: each attempt is refused with a reason in the
//! Reconciler's status, and nothing is written or read. The same guest under
//! an administrator's ClusterReconciler still works where its policy allows.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::{Value, json};
use sous::operator::OperatorOptions;
use sous::tenancy::Tenancy;
use sous_tests::envtest::{self, create_namespace};
use sous_tests::guests::guest_bytes;
use sous_tests::host::{self, TestHost};

use crate::Env;
use crate::support::{World, condition_field, condition_is, my_app, my_app_reconciler};

/// The tenant, a user with rights only in the trial's namespace.
const TENANT: &str = "e2e-tenant";
/// The label that picks this trial's Reconcilers out of every namespace's.
pub const TRIAL: &str = "e2e.sous.dev/trial";
/// The host's own ServiceAccount, in the trial's namespace.
const HOST_ACCOUNT: &str = "sous";

/// Every attack of a namespaced Reconciler is refused, in its status, and
/// none writes or reads anything; RBAC on its ServiceAccount bounds the rest;
/// an administrator's ClusterReconciler keeps its powers.
pub async fn namespaced_reconcilers_are_confined(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let ns = world.ns.clone();
    let victim = create_namespace(&world.client, "e2e-victim").await?;
    let admin_in_victim = world.in_namespace(&victim);
    admin_in_victim
        .apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db"},
            "data": {"password": ByteString(b"hunter2".to_vec())},
        }))
        .await;
    admin_in_victim
        .upload("borrowed", &guest_bytes("hostile"))
        .await;

    grant_tenant(&world).await;
    let tenant = world.as_user(TENANT);
    let module = tenant.upload("hostile", &guest_bytes("hostile")).await;
    let hostile = |extra: Value| {
        let mut spec = json!({
            "parent": {"apiVersion": "example.sous.dev/v1", "kind": "Hostile"},
            "children": [{"apiVersion": "v1", "kind": "ConfigMap"}],
            "module": module.clone(),
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        spec
    };
    let binding =
        json!([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding"}]);
    let borrowed_module = json!({
        "configMapRef": {"name": "borrowed-part-0", "key": "module"},
        "namespace": victim,
    });
    // (Reconciler, its spec, the reason it is refused with, the parent's attack)
    let attacks = [
        (
            "escalate-by-policy",
            hostile(json!({"children": binding, "policy": {"allowClusterScoped": true}})),
            "ClusterScopeNotAllowed",
            json!({"attack": "forbidden"}),
        ),
        (
            "escalate-by-kind",
            hostile(json!({"children": binding})),
            "ClusterScopeNotAllowed",
            json!({"attack": "forbidden"}),
        ),
        (
            "everywhere",
            hostile(json!({"policy": {"allowedNamespaces": ["*"]}})),
            "OutsideNamespace",
            json!({"attack": "elsewhere", "namespace": victim}),
        ),
        (
            "steal",
            hostile(
                json!({"related": [{"apiVersion": "v1", "kind": "Secret", "namespace": victim}]}),
            ),
            "OutsideNamespace",
            json!({"attack": "exfiltrate"}),
        ),
        (
            "borrow",
            hostile(json!({"module": borrowed_module})),
            "OutsideNamespace",
            json!({"attack": "none"}),
        ),
        (
            "impostor",
            hostile(json!({"serviceAccountName": HOST_ACCOUNT})),
            "HostIdentity",
            json!({"attack": "none"}),
        ),
    ];
    for (name, spec, _, attack) in &attacks {
        tenant
            .apply(labelled_reconciler(&ns, name, spec.clone()))
            .await;
        tenant.apply(hostile_parent(name, attack.clone())).await;
    }

    let _host = tenancy_host(&world);
    for (name, _, reason, _) in &attacks {
        let refused = world
            .wait_reconciler(name, "Ready", "False", Some(reason))
            .await;
        let message = condition_field(&refused, "Ready", "message");
        assert!(
            message.contains("ClusterReconciler") || message.contains("serviceAccountName"),
            "{name}: the refusal says what to use instead: {message}"
        );
        println!("e2e: tenancy: {name}: Ready=False {reason}: {message}");
    }
    let borrowed = world
        .get("sous.dev/v1alpha1", "Reconciler", "borrow")
        .await
        .unwrap();
    assert!(
        condition_is(&borrowed, "ModuleReady", "False", Some("NotLoaded"))
            && borrowed.data["status"].get("moduleDigest").is_none(),
        "the other namespace's module was read: {:?}",
        borrowed.data["status"]
    );

    // A secret of its own namespace, which its ServiceAccount may not read.
    world
        .apply(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "local"},
            "stringData": {"token": "local-secret"},
        }))
        .await;
    let reader = hostile(
        json!({"related": [{"apiVersion": "v1", "kind": "Secret"}], "serviceAccountName": "reader"}),
    );
    let mut readable = reader.clone();
    readable["related"] = json!([]);
    world.grant("reader", &readable).await;
    tenant
        .apply(labelled_reconciler(&ns, "read-secrets", reader))
        .await;
    tenant
        .apply(hostile_parent(
            "read-secrets",
            json!({"attack": "exfiltrate"}),
        ))
        .await;
    let refused = world
        .wait_reconciler("read-secrets", "Ready", "False", Some("RelatedForbidden"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(
        message.contains(&format!("ServiceAccount {ns}/reader may not list secrets")),
        "{message}"
    );

    // The namespace's default ServiceAccount, first with no rights at all,
    // then allowed Deployments but not Services.
    let my_app_module = tenant.upload("my-app", &guest_bytes("my_app")).await;
    tenant
        .apply(labelled_reconciler(
            &ns,
            "my-app",
            my_app_reconciler(my_app_module.clone()),
        ))
        .await;
    let refused = world
        .wait_reconciler("my-app", "Ready", "False", Some("ParentForbidden"))
        .await;
    let message = condition_field(&refused, "Ready", "message");
    assert!(
        message.contains(&format!(
            "ServiceAccount {ns}/default may not list myapps.example.sous.dev"
        )),
        "{message}"
    );
    let mut no_services = my_app_reconciler(my_app_module);
    no_services["children"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment"}]);
    world.grant("default", &no_services).await;
    let default = json!({"kind": "ServiceAccount", "name": "default", "namespace": ns});
    let read_services =
        json!([{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}]);
    world.bind("read-services", default, read_services).await;
    world
        .wait_reconciler("my-app", "Ready", "True", Some("Running"))
        .await;
    tenant.apply(my_app("web", 1)).await;
    world.wait_services_forbidden("web", "default").await;
    // Revoking the Role stops what the reconciler is handed.
    world
        .delete(
            "rbac.authorization.k8s.io/v1",
            "Role",
            &sous::tenancy::grants::role_name("default"),
        )
        .await;
    world
        .wait_reconciler("my-app", "Ready", "False", Some("ParentForbidden"))
        .await;

    // Nothing any attack asked for exists.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["escalate-by-policy", "escalate-by-kind"] {
        assert!(
            world
                .get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", name)
                .await
                .is_none(),
            "ClusterRoleBinding {name} was written"
        );
    }
    assert!(
        admin_in_victim
            .get("v1", "ConfigMap", "everywhere")
            .await
            .is_none(),
        "a ConfigMap was written into {victim}"
    );
    for loot in ["steal-loot", "read-secrets-loot"] {
        assert!(
            world.get("v1", "ConfigMap", loot).await.is_none(),
            "secrets were handed to the guest ({loot})"
        );
    }
    Api::<Namespace>::all(world.client.clone())
        .delete(&victim, &DeleteParams::background())
        .await?;
    Ok(())
}

/// An administrator's ClusterReconciler runs the same guest with the wider
/// powers its policy grants: here a ClusterRoleBinding (to a harmless role
/// for a user that does not exist).
pub async fn cluster_reconcilers_keep_their_powers(env: Env) -> anyhow::Result<()> {
    let world = World::new(env).await;
    let ns = world.ns.clone();
    // A parent kind of this trial's own: a ClusterReconciler watches every namespace.
    let group = format!("{ns}.sous.dev");
    let kind = "Intruder";
    let crd_name = format!("intruders.{group}");
    let crd = std::fs::read_to_string(
        sous_tests::guests::repo_root().join("tests/fixtures/hostile-crd.yaml"),
    )?
    .replace("example.sous.dev", &group)
    .replace("Hostile", kind)
    .replace("hostile", "intruder");
    envtest::apply_yaml(&world.client, &crd, None).await?;
    envtest::wait_crd_established(&world.client, &crd_name).await;
    let module = world.upload("hostile", &guest_bytes("hostile")).await;
    let name = format!("grant-{ns}");
    let grantee = format!("nobody-{ns}");
    world
        .apply(json!({
            "apiVersion": "sous.dev/v1alpha1", "kind": "ClusterReconciler",
            "metadata": {"name": name, "labels": {TRIAL: ns}},
            "spec": {
                "parent": {"apiVersion": format!("{group}/v1"), "kind": kind},
                "children": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding"}],
                "module": module,
                "policy": {"allowClusterScoped": true},
            },
        }))
        .await;
    let host = tenancy_host(&world);
    world
        .apply(json!({
            "apiVersion": format!("{group}/v1"), "kind": kind,
            "metadata": {"name": name},
            "spec": {"attack": "forbidden", "clusterRole": "view", "grantee": grantee},
        }))
        .await;
    let binding = world
        .wait_object(
            "the ClusterReconciler's ClusterRoleBinding",
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            &name,
            |_| true,
        )
        .await;
    assert_eq!(binding.data["roleRef"]["name"], "view");
    assert_eq!(binding.data["subjects"][0]["name"], grantee.as_str());
    drop(host);
    world
        .delete("sous.dev/v1alpha1", "ClusterReconciler", &name)
        .await;
    world
        .delete("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &name)
        .await;
    world
        .delete(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            &crd_name,
        )
        .await;
    Ok(())
}

/// `sous push` as a tenant who may not create RBAC: a clear message saying
/// whom to ask, and nothing written; with `--no-rbac` the push goes through.
pub async fn push_without_rbac_rights_says_whom_to_ask(env: Env) -> anyhow::Result<()> {
    let Some(kubeconfig) = user_kubeconfig(&env, "alice")? else {
        println!("e2e: tenancy: push as a tenant: skipped: no token user on an existing cluster");
        return Ok(());
    };
    let world = World::new(env).await;
    grant_user(
        &world,
        "alice",
        json!([
            {"apiGroups": ["sous.dev"], "resources": ["reconcilers"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]},
        ]),
    )
    .await;
    let push = |extra: &[&str]| {
        sous_tests::cli::sous()
            .env("KUBECONFIG", kubeconfig.path())
            .args(["push", "--name", "my-app", "--namespace", &world.ns])
            .args([
                "--module",
                &sous_tests::guests::guest("my_app").to_string_lossy(),
            ])
            .args(["--parent-kind", "example.sous.dev/v1/MyApp"])
            .args(["--child-kind", "apps/v1/Deployment"])
            .args(extra)
            .output()
            .expect("running sous push")
    };
    let refused = push(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("you may not create ServiceAccount")
            && stderr.contains("ask an administrator")
            && stderr.contains("--no-rbac"),
        "{stderr}"
    );
    assert!(
        world
            .list("v1", "ConfigMap")
            .await
            .iter()
            .all(|cm| !is_module_part(cm))
    );
    assert!(
        world
            .get("sous.dev/v1alpha1", "Reconciler", "my-app")
            .await
            .is_none()
    );

    let pushed = push(&["--no-rbac", "--service-account", "team-deployer"]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let reconciler = world
        .get("sous.dev/v1alpha1", "Reconciler", "my-app")
        .await
        .unwrap();
    assert_eq!(
        reconciler.data["spec"]["serviceAccountName"],
        "team-deployer"
    );
    Ok(())
}

/// A Role in the world's namespace with `rules`, bound to `user`.
async fn grant_user(world: &World, user: &str, rules: Value) {
    world
        .bind(user, json!({"kind": "User", "name": user}), rules)
        .await;
}

/// What a team gets in its own namespace: Reconcilers, ConfigMaps (module
/// uploads) and its parent kinds; nothing elsewhere, no RBAC.
async fn grant_tenant(world: &World) {
    grant_user(
        world,
        TENANT,
        json!([
            {"apiGroups": ["sous.dev"], "resources": ["reconcilers"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]},
            {"apiGroups": ["example.sous.dev"], "resources": ["hostiles", "myapps"], "verbs": ["*"]},
        ]),
    )
    .await;
}

/// A Reconciler of this trial (its label picks it out for the host).
fn labelled_reconciler(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "sous.dev/v1alpha1", "kind": "Reconciler",
        "metadata": {"name": name, "labels": {TRIAL: ns}},
        "spec": spec,
    })
}

/// A Hostile parent named after its reconciler.
fn hostile_parent(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "example.sous.dev/v1", "kind": "Hostile",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A host running as its own ServiceAccount ([`HOST_ACCOUNT`] of the trial's
/// namespace, with the admin's powers), serving every namespace's
/// Reconcilers and ClusterReconcilers of this trial only.
pub fn tenancy_host(world: &World) -> TestHost {
    let user = format!("system:serviceaccount:{}:{HOST_ACCOUNT}", world.ns);
    let config = world.cluster.config_as(&user, &["system:masters"]);
    let options = OperatorOptions {
        watch_namespace: None,
        reconciler_selector: Some(format!("{TRIAL}={}", world.ns)),
        tenancy: Tenancy {
            access_recheck: Duration::from_secs(1),
            ..Tenancy::default()
        },
        ..host::options(&world.ns, "tenancy", None)
    };
    TestHost::start(config, options)
}

/// A kubeconfig whose current context is token user `user`; `None` on an
/// existing cluster, which has no token users.
fn user_kubeconfig(env: &Env, user: &str) -> anyhow::Result<Option<tempfile::NamedTempFile>> {
    if env.cluster.token_user_config(user).is_none() {
        return Ok(None);
    }
    let mut kubeconfig: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(env.cluster.kubeconfig_path())?)?;
    kubeconfig["current-context"] = user.into();
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_yaml_ng::to_string(&kubeconfig)?)?;
    Ok(Some(file))
}

/// Whether a ConfigMap holds a part of a pushed module.
fn is_module_part(config_map: &DynamicObject) -> bool {
    config_map
        .metadata
        .labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key("sous.dev/module-of"))
}
