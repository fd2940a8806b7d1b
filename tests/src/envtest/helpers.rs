//! What e2e tests do again and again against a cluster: a namespace of their
//! own, applying YAML, and waiting for a condition.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde::Deserialize as _;

/// The field manager of objects the tests apply.
const FIELD_MANAGER: &str = "sous-e2e";

/// How often [`wait_for`] polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long a CRD may take to be established and served.
const CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates a namespace named `<prefix>-<random suffix>` and answers its name.
pub async fn create_namespace(client: &kube::Client, prefix: &str) -> anyhow::Result<String> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating a namespace `{prefix}-…`"))?;
    created
        .metadata
        .name
        .context("the apiserver named no namespace")
}

/// Server-side applies every document of `yaml` (forcing ownership of the
/// fields, as field manager `sous-e2e`) and answers the applied objects.
/// Kinds are resolved through discovery, so the CRD of a custom object must
/// be served first (see [`wait_crd_established`]). A namespaced object
/// without `metadata.namespace` goes to `namespace`.
pub async fn apply_yaml(
    client: &kube::Client,
    yaml: &str,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<DynamicObject>> {
    let mut applied = Vec::new();
    for object in parse_yaml(yaml)? {
        applied.push(apply(client, object, namespace).await?);
    }
    Ok(applied)
}

/// Every document of `yaml` that is not empty, parsed before anything is
/// applied (the parser must not live across an `await`: it is not `Send`).
fn parse_yaml(yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_yaml_ng::Value::deserialize(document).context("parsing YAML")?;
        if !value.is_null() {
            objects.push(serde_yaml_ng::from_value(value).context("reading an object")?);
        }
    }
    Ok(objects)
}

async fn apply(
    client: &kube::Client,
    mut object: DynamicObject,
    namespace: Option<&str>,
) -> anyhow::Result<DynamicObject> {
    let name = object
        .metadata
        .name
        .clone()
        .context("an object in the YAML has no metadata.name")?;
    let types = object
        .types
        .as_ref()
        .with_context(|| format!("object `{name}` has no apiVersion and kind"))?;
    let kind = GroupVersionKind::try_from(types)?;
    let (resource, capabilities) = discovery::pinned_kind(client, &kind)
        .await
        .with_context(|| format!("finding {} `{name}` in discovery", types.kind))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => {
            let namespace = object.metadata.namespace.get_or_insert(
                namespace.map(str::to_owned).with_context(|| {
                    format!("{} `{name}` is namespaced but has no namespace", types.kind)
                })?,
            );
            Api::namespaced_with(client.clone(), namespace, &resource)
        }
    };
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {} `{name}`", resource.kind))
}

/// Polls `poll` until it answers `Ok(value)` and returns the value. Each
/// `Err` is an observation of what is not there yet; after `timeout` this
/// panics naming `what` and quoting the last observation.
pub async fn wait_for<T, O, F, Fut>(what: &str, timeout: Duration, mut poll: F) -> T
where
    O: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, O>>,
{
    let mut last = None;
    let waited = tokio::time::timeout(timeout, async {
        loop {
            match poll().await {
                Ok(value) => return value,
                Err(observation) => last = Some(observation),
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    })
    .await;
    match waited {
        Ok(value) => value,
        Err(_elapsed) => {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}")
        }
    }
}

/// Waits until the CRD `name` (e.g. `myapps.example.sous.dev`) is established
/// and discovery serves its kind in every served version; panics after 30 s.
pub async fn wait_crd_established(client: &kube::Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = wait_for(
        &format!("CRD `{name}` established"),
        CRD_TIMEOUT,
        || async {
            let crd = crds.get(name).await.map_err(|error| error.to_string())?;
            let established = crd.status.as_ref().and_then(|status| {
                status
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|condition| condition.type_ == "Established")
            });
            match established {
                Some(condition) if condition.status == "True" => Ok(crd),
                other => Err(format!("Established condition: {other:?}")),
            }
        },
    )
    .await;
    let spec = &crd.spec;
    for version in spec.versions.iter().filter(|version| version.served) {
        let kind = GroupVersionKind::gvk(&spec.group, &version.name, &spec.names.kind);
        wait_for(
            &format!("discovery serving {kind:?}"),
            CRD_TIMEOUT,
            || async {
                discovery::pinned_kind(client, &kind)
                    .await
                    .map_err(|error| error.to_string())
            },
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_documents_are_skipped_and_the_rest_kept_in_order() {
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# nothing\n---\n\
                    apiVersion: example.sous.dev/v1\nkind: MyApp\nmetadata: {name: b}\nspec: {replicas: 1}\n";
        let objects = parse_yaml(yaml).unwrap();
        let names: Vec<_> = objects.iter().map(|o| o.metadata.name.as_deref()).collect();
        assert_eq!(names, [Some("a"), Some("b")]);
        assert_eq!(objects[1].types.as_ref().unwrap().kind, "MyApp");
        assert_eq!(objects[1].data["spec"]["replicas"], 1);
    }

    #[test]
    fn bad_yaml_is_an_error() {
        assert!(parse_yaml("a: [").is_err());
    }

    #[tokio::test]
    async fn wait_for_returns_the_first_ready_value() {
        let mut polls = 0;
        let value = wait_for("three polls", Duration::from_secs(5), || {
            polls += 1;
            let polled = polls;
            async move {
                if polled < 3 {
                    Err(polled)
                } else {
                    Ok(polled * 10)
                }
            }
        })
        .await;
        assert_eq!(value, 30);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the impossible; last seen: Some(\"still no\")")]
    async fn wait_for_panics_with_the_last_observation() {
        wait_for("the impossible", Duration::from_millis(300), || async {
            Err::<(), _>("still no")
        })
        .await;
    }
}
