//! CustomResourceDefinitions as they come and change: a reconciler waiting
//! for a kind that is not served yet retries as soon as a CRD is created or
//! becomes established, instead of at its next backoff (up to 30 s later).

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::recovery::Recovering;

/// Counts CRD changes; reconcilers waiting for a kind subscribe to it.
pub type CrdChanges = watch::Sender<u64>;

/// Watches CRDs (their metadata only) and bumps `changes` on every change,
/// until dropped. A host that may not watch CRDs logs it and keeps retrying
/// missing kinds on its backoff alone.
pub async fn watch(client: kube::Client, changes: CrdChanges) {
    let api: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(client);
    let mut events = watcher(api, watcher::Config::default())
        .recovering()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(_) | watcher::Event::InitDone) => {
                changes.send_modify(|count| *count = count.wrapping_add(1));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "watching CustomResourceDefinitions failed; missing kinds are retried on their backoff");
            }
        }
    }
}
