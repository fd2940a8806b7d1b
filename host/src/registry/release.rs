//! The fate of a reconciler's parents when the reconciler goes. A Reconciler
//! with `spec.finalizer: true` puts `sous.dev/finalizer` on its parents; only
//! it would ever take it off, so deleting it would leave every one of them
//! unable to be deleted. The host therefore keeps `sous.dev/release-parents`
//! on such a Reconciler, and when it is deleted *releases* its parents: it
//! removes `sous.dev/finalizer` from each (without calling `finalize`: the
//! logic is going away with its Reconciler), then its own finalizer. The
//! parents stay, and their children with them, owned as before; a parent
//! deleted later goes at once, its children collected by the garbage
//! collector.

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams, ObjectMeta};

use super::Host;
use crate::controller::apply::api_for;
use crate::controller::finalizer;
use crate::controller::kinds::{self, Kind, KindError};
use crate::controller::labels::FINALIZER;
use crate::crd::{ClusterReconciler, Reconciler, ReconcilerKey, ReconcilerSpec};

/// The finalizer on a Reconciler whose parents carry `sous.dev/finalizer`.
pub const RELEASE_FINALIZER: &str = "sous.dev/release-parents";

/// First wait before trying a failed release again; doubles up to a minute.
const RETRY_BASE: Duration = Duration::from_secs(1);

/// Why parents could not be released (yet).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The parent kind is not served: there are no parents to release.
    #[error(transparent)]
    Kind(#[from] KindError),
    /// Listing or patching failed.
    #[error("releasing the parents failed: {0}")]
    Api(#[from] kube::Error),
}

/// A Reconciler or ClusterReconciler object, as far as its finalizer goes.
pub struct ReconcilerObject<'a> {
    /// Which one.
    pub key: &'a ReconcilerKey,
    /// Its spec.
    pub spec: &'a ReconcilerSpec,
    /// Its metadata (finalizers, resourceVersion).
    pub meta: &'a ObjectMeta,
}

impl ReconcilerObject<'_> {
    fn kind(&self) -> Kind {
        let (resource, namespaced) = match self.key.namespace {
            Some(_) => (ApiResource::erase::<Reconciler>(&()), true),
            None => (ApiResource::erase::<ClusterReconciler>(&()), false),
        };
        Kind {
            resource,
            namespaced,
            has_status: true,
        }
    }

    fn as_dynamic(&self) -> DynamicObject {
        DynamicObject {
            types: None,
            metadata: self.meta.clone(),
            data: serde_json::Value::Null,
        }
    }

    fn has_finalizer(&self) -> bool {
        finalizer::has(self.meta, RELEASE_FINALIZER)
    }

    /// Puts the release finalizer on a live reconciler that finalizes its
    /// parents, and takes it off one that no longer does (its passes
    /// remove the parents' finalizers themselves).
    pub async fn keep_finalizer(&self, host: &Host) -> kube::Result<()> {
        let (kind, object) = (self.kind(), self.as_dynamic());
        if self.spec.finalizer {
            finalizer::add(&host.client, &kind, &object, RELEASE_FINALIZER).await
        } else {
            finalizer::remove(&host.client, &kind, &object, RELEASE_FINALIZER).await
        }
    }

    /// Releases the parents of a reconciler being deleted, then lets it go;
    /// a no-op when it carries no release finalizer.
    pub async fn release(&self, host: &Host) -> Result<usize, ReleaseError> {
        if !self.has_finalizer() {
            return Ok(0);
        }
        let released = match kinds::resolve_parent(&host.client, self.spec).await {
            Ok(parent_kind) => release_parents(host, self.key, &parent_kind).await?,
            // No parent kind served: no parent carries the finalizer.
            Err(KindError::NotFound { .. }) => 0,
            Err(error) => return Err(error.into()),
        };
        finalizer::remove(
            &host.client,
            &self.kind(),
            &self.as_dynamic(),
            RELEASE_FINALIZER,
        )
        .await?;
        Ok(released)
    }

    /// [`Self::release`], tried again with backoff until it succeeds.
    pub async fn release_until_done(&self, host: &Host) {
        let mut wait = RETRY_BASE;
        loop {
            match self.release(host).await {
                Ok(released) => {
                    tracing::info!(reconciler = %self.key, released, "reconciler deleted; its parents were released from sous.dev/finalizer");
                    return;
                }
                // Someone changed the object meanwhile: the next event
                // brings its new version.
                Err(ReleaseError::Api(kube::Error::Api(status))) if status.code == 409 => return,
                Err(error) => {
                    tracing::warn!(reconciler = %self.key, %error, retry_in = ?wait, "could not release the parents of a deleted reconciler");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

/// Removes `sous.dev/finalizer` from every parent of `key` in its scope.
async fn release_parents(
    host: &Host,
    key: &ReconcilerKey,
    parent_kind: &Kind,
) -> Result<usize, kube::Error> {
    let api = api_for(&host.client, parent_kind, key.namespace.as_deref());
    let mut released = 0;
    for parent in api.list(&ListParams::default()).await? {
        if finalizer::has(&parent.metadata, FINALIZER) {
            finalizer::remove(&host.client, parent_kind, &parent, FINALIZER).await?;
            released += 1;
        }
    }
    Ok(released)
}
