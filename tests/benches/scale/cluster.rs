//! A control plane for one measurement: etcd and kube-apiserver only (no
//! controller acts on the children), the MyApp and Sous CRDs, a namespace
//! of parents created at once.

use std::time::Instant;

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use sous_tests::envtest::{self, TestCluster};
use sous_tests::fixtures::{MYAPP_CRD, MYAPP_CRD_NAME, my_app};

/// The namespace of the parents and the Reconciler.
pub const NAMESPACE: &str = "scale";

/// Parents created at once while creating them.
const CREATES_IN_FLIGHT: usize = 32;

/// A started control plane with the CRDs and the parents' namespace.
pub struct Bench {
    pub cluster: TestCluster,
    pub client: kube::Client,
}

impl Bench {
    pub async fn start() -> anyhow::Result<Self> {
        let cluster = TestCluster::start_api_only()
            .await?
            .context("no control plane to start")?;
        let client = cluster.client().await;
        let sous_crds = sous::crd::definitions_yaml()?;
        for yaml in [MYAPP_CRD, sous_crds.as_str()] {
            envtest::apply_yaml(&client, yaml, None).await?;
        }
        for name in [MYAPP_CRD_NAME, "reconcilers.sous.dev"] {
            envtest::wait_crd_established(&client, name).await;
        }
        for namespace in [NAMESPACE, sous::cli::DEFAULT_HOST_NAMESPACE] {
            let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n");
            envtest::apply_yaml(&client, &yaml, None).await?;
        }
        Ok(Self { cluster, client })
    }

    /// The MyApp API of the parents' namespace.
    pub fn parents(&self) -> Api<DynamicObject> {
        let resource =
            ApiResource::from_gvk(&GroupVersionKind::gvk("example.sous.dev", "v1", "MyApp"));
        Api::namespaced_with(self.client.clone(), NAMESPACE, &resource)
    }

    /// Creates `count` MyApp parents, several at once; answers them as
    /// created and how long that took.
    pub async fn create_parents(
        &self,
        count: usize,
    ) -> anyhow::Result<(Vec<DynamicObject>, std::time::Duration)> {
        let api = self.parents();
        let started = Instant::now();
        let created = stream::iter(0..count)
            .map(|index| {
                let api = api.clone();
                async move {
                    let parent: DynamicObject =
                        serde_json::from_value(my_app(&format!("app-{index:05}"), 2))?;
                    anyhow::Ok(api.create(&PostParams::default(), &parent).await?)
                }
            })
            .buffer_unordered(CREATES_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok((created, started.elapsed()))
    }
}
