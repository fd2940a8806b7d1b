//! The harness itself works: the apiserver stores objects, CRDs applied from
//! YAML are served, RBAC is enforced, and (with kube-controller-manager)
//! owned objects are garbage-collected with their owner.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::GroupVersionKind;
use serde_json::json;
use sous_tests::envtest::{apply_yaml, wait_crd_established, wait_for};
use sous_tests::fixtures::{MYAPP_CRD, MYAPP_CRD_NAME};

use crate::Env;

/// How long the control plane may take to act on a change.
const SETTLE: Duration = Duration::from_secs(60);

/// The apiserver answers, the trial's namespace is active, and an object
/// written is read back.
pub async fn apiserver_answers(env: Env) -> anyhow::Result<()> {
    let version = env.client.apiserver_version().await?;
    ensure!(
        version.git_version.starts_with('v'),
        "odd version {version:?}"
    );

    let namespace = Api::<Namespace>::all(env.client.clone())
        .get(&env.namespace)
        .await?;
    let phase = namespace.status.and_then(|status| status.phase);
    ensure!(
        phase.as_deref() == Some("Active"),
        "namespace phase {phase:?}"
    );

    let config_maps: Api<ConfigMap> = Api::namespaced(env.client, &env.namespace);
    let written = config_map("greeting", [("hello", "world")]);
    config_maps.create(&PostParams::default(), &written).await?;
    let read = config_maps.get("greeting").await?;
    ensure!(read.data == written.data, "read back {:?}", read.data);
    Ok(())
}

/// The MyApp CRD applied from YAML becomes established; a MyApp is created
/// from YAML, its schema is enforced and its status subresource is separate
/// from its spec.
pub async fn crd_from_yaml_is_served(env: Env) -> anyhow::Result<()> {
    let applied = apply_yaml(&env.client, MYAPP_CRD, None).await?;
    ensure!(applied.len() == 1, "applied {} objects", applied.len());
    wait_crd_established(&env.client, MYAPP_CRD_NAME).await;

    let parent = "apiVersion: example.sous.dev/v1\nkind: MyApp\nmetadata:\n  name: web\n\
                  spec:\n  image: nginx:1.27\n  replicas: 2\n  port: 8080\n";
    apply_yaml(&env.client, parent, Some(&env.namespace)).await?;
    let kind = GroupVersionKind::gvk("example.sous.dev", "v1", "MyApp");
    let apps: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &ApiResource::from_gvk(&kind),
    );
    let app = apps.get("web").await?;
    ensure!(
        app.data["spec"]["replicas"] == 2,
        "spec {}",
        app.data["spec"]
    );

    let invalid = parent.replace("replicas: 2", "replicas: two");
    let refused = apply_yaml(&env.client, &invalid, Some(&env.namespace)).await;
    match refused {
        Err(error) if format!("{error:#}").contains("spec.replicas") => {}
        other => bail!("a string for spec.replicas was not refused: {other:?}"),
    }

    let status = json!({"status": {"phase": "Ready", "readyReplicas": 2}});
    apps.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let app = apps.get("web").await?;
    ensure!(
        app.data["status"] == status["status"],
        "status {}",
        app.data["status"]
    );
    ensure!(
        app.data["spec"]["image"] == "nginx:1.27",
        "spec {}",
        app.data["spec"]
    );
    Ok(())
}

/// A user with no roles may not list namespaces; a Role bound to it grants
/// exactly what it says. Checked through impersonation, and with a token of
/// its own when the harness started the control plane.
pub async fn rbac_is_enforced(env: Env) -> anyhow::Result<()> {
    let user = "sous-e2e-nobody";
    let nobody = kube::Client::try_from(env.cluster.config_as(user, &[]))?;
    ensure_forbidden(
        Api::<Namespace>::all(nobody.clone())
            .list(&Default::default())
            .await,
    )?;
    if let Some(config) = env.cluster.token_user_config("alice") {
        let alice = kube::Client::try_from(config)?;
        ensure_forbidden(Api::<Namespace>::all(alice).list(&Default::default()).await)?;
    }

    grant_config_map_reading(&env, user).await?;
    let readable: Api<ConfigMap> = Api::namespaced(nobody.clone(), &env.namespace);
    wait_for(
        "the Role to let the user list ConfigMaps",
        SETTLE,
        || async {
            readable
                .list(&Default::default())
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
    .await;
    ensure_forbidden(
        Api::<Namespace>::all(nobody.clone())
            .list(&Default::default())
            .await,
    )?;
    let writable: Api<ConfigMap> = Api::namespaced(nobody, &env.namespace);
    ensure_forbidden(
        writable
            .create(&PostParams::default(), &config_map("x", []))
            .await,
    )?;
    Ok(())
}

/// Deleting a ConfigMap garbage-collects the ConfigMap it owns, and only it.
pub async fn owned_objects_are_garbage_collected(env: Env) -> anyhow::Result<()> {
    ensure!(
        env.cluster.has_controller_manager(),
        "garbage collection needs kube-controller-manager"
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client, &env.namespace);
    let create = PostParams::default();
    let owner = config_maps
        .create(&create, &config_map("owner", []))
        .await?;
    let mut owned = config_map("owned", []);
    owned.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        name: "owner".to_owned(),
        uid: owner.metadata.uid.context("the owner has no uid")?,
        ..OwnerReference::default()
    }]);
    config_maps.create(&create, &owned).await?;
    config_maps
        .create(&create, &config_map("bystander", []))
        .await?;

    config_maps
        .delete("owner", &DeleteParams::background())
        .await?;
    wait_for(
        "the owned ConfigMap to be garbage-collected",
        SETTLE,
        || async {
            match config_maps.get_opt("owned").await {
                Ok(None) => Ok(()),
                Ok(Some(found)) => Err(format!("still there: {:?}", found.metadata)),
                Err(error) => Err(error.to_string()),
            }
        },
    )
    .await;
    ensure!(
        config_maps.get_opt("bystander").await?.is_some(),
        "an object with no owner was deleted too"
    );
    Ok(())
}

fn config_map<const N: usize>(name: &str, data: [(&str, &str); N]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..ConfigMap::default()
    }
}

/// Binds a Role allowing `get` and `list` of ConfigMaps in the trial's
/// namespace to `user`.
async fn grant_config_map_reading(env: &Env, user: &str) -> anyhow::Result<()> {
    let name = "config-map-reader";
    let role = Role {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_owned()]),
            verbs: vec!["get".to_owned(), "list".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: role.metadata.clone(),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "User".to_owned(),
            name: user.to_owned(),
            ..Subject::default()
        }]),
    };
    let create = PostParams::default();
    Api::<Role>::namespaced(env.client.clone(), &env.namespace)
        .create(&create, &role)
        .await?;
    Api::<RoleBinding>::namespaced(env.client.clone(), &env.namespace)
        .create(&create, &binding)
        .await?;
    Ok(())
}

/// `outcome` is the apiserver's 403.
fn ensure_forbidden<T: std::fmt::Debug>(outcome: kube::Result<T>) -> anyhow::Result<()> {
    match outcome {
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
        other => bail!("expected 403 Forbidden, got {other:?}"),
    }
}
