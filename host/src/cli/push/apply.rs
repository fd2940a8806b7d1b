//! Writing one push to the cluster: a namespaced Reconciler's grants, the
//! parts, then the reconciler (the switch), then ownership and pruning of
//! the parts no longer referenced.

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::objects::{MODULE_OF_LABEL, ReconcilerObject, Upload};
use super::rbac::FIELD_MANAGER;

impl Upload {
    /// Applies a namespaced Reconciler's grants, the parts, then the
    /// reconciler (the switch); makes the reconciler own the parts (deleting
    /// it deletes them), and deletes the parts of this reconciler no longer
    /// referenced.
    pub(super) async fn apply(&self, client: Client) -> anyhow::Result<()> {
        if let Some(grants) = &self.grants {
            super::rbac::apply(&client, grants).await?;
        }
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for config_map in &self.config_maps {
            let name = config_map.name_any();
            config_maps
                .patch(&name, &params, &Patch::Apply(config_map))
                .await
                .with_context(|| format!("applying ConfigMap {}/{name}", self.namespace))?;
            eprintln!("applied ConfigMap {}/{name}", self.namespace);
        }
        let owner = match &self.reconciler {
            ReconcilerObject::Namespaced(object) => {
                let api = Api::namespaced(client, &self.namespace);
                apply_owner(&api, object.as_ref(), &params).await
            }
            ReconcilerObject::Cluster(object) => {
                apply_owner(&Api::all(client), object.as_ref(), &params).await
            }
        }
        .with_context(|| format!("applying {}", self.key))?;
        eprintln!("applied {}", self.key);
        let owned = Patch::Merge(json!({"metadata": {"ownerReferences": [owner]}}));
        let owner_params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let mut referenced = Vec::new();
        for config_map in &self.config_maps {
            let name = config_map.name_any();
            config_maps
                .patch(&name, &owner_params, &owned)
                .await
                .with_context(|| {
                    format!(
                        "making {} own ConfigMap {}/{name}",
                        self.key, self.namespace
                    )
                })?;
            referenced.push(name);
        }
        self.prune(&config_maps, &referenced).await
    }

    /// Deletes this reconciler's module ConfigMaps not in `referenced`.
    async fn prune(
        &self,
        config_maps: &Api<ConfigMap>,
        referenced: &[String],
    ) -> anyhow::Result<()> {
        let selector = format!("{MODULE_OF_LABEL}={}", self.key.label_value());
        let listed = config_maps
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .with_context(|| format!("listing ConfigMaps {selector} in {}", self.namespace))?;
        for old in listed {
            let name = old.name_any();
            if referenced.contains(&name) {
                continue;
            }
            match config_maps.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!("deleting the old ConfigMap {}/{name}", self.namespace)
                    });
                }
            }
            eprintln!(
                "deleted ConfigMap {}/{name} (no longer referenced)",
                self.namespace
            );
        }
        Ok(())
    }
}

/// Server-side applies `object` and returns a reference to it as an owner.
async fn apply_owner<K>(
    api: &Api<K>,
    object: &K,
    params: &PatchParams,
) -> anyhow::Result<OwnerReference>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let applied = api
        .patch(&object.name_any(), params, &Patch::Apply(object))
        .await?;
    applied
        .owner_ref(&())
        .context("the API server returned the object without a uid")
}
