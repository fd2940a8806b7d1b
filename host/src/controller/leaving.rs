//! A parent leaving the reconciler: deleted, or no longer matching
//! `spec.parentSelector`. Either way the guest's `finalize` runs (when the
//! Reconciler asks for a finalizer) until it answers done, then every
//! child is handled by its kind's delete policy (deleted, or released)
//! and the host's finalizer is removed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Resource;
use kube::api::DynamicObject;

use super::finalizer;
use super::labels::FINALIZER;
use super::observe::{self, Observation};
use super::pass::{
    PassError, Spine, report_failure, set_parent_metadata, write_children, write_status,
};
use super::status::Readiness;
use crate::crd::{DeletePolicy, ReconcilerSpec};
use crate::runtime::LoadedModule;

/// How long to wait before asking a guest that is not done finalizing again,
/// when it did not say.
const FINALIZE_RETRY: Duration = Duration::from_secs(5);

/// Why a parent is let go of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaving {
    /// It is being deleted.
    Deleted,
    /// Its labels no longer match `spec.parentSelector`.
    Deselected,
}

/// Whether parents carry the host's finalizer: when the guest asks for one,
/// and when a child kind is released rather than deleted (the garbage
/// collector would otherwise delete it with its parent).
pub fn needs_finalizer(spec: &ReconcilerSpec) -> bool {
    spec.finalizer
        || spec
            .children
            .iter()
            .any(|child| child.delete_policy == DeletePolicy::Orphan)
}

/// Lets go of `parent`: `finalize` until done (when the guest asked for a
/// finalizer and the parent still has it), the children by their delete
/// policies, then the finalizer. Returns when to try again if the guest is
/// not done yet.
pub async fn let_go(
    parent: &DynamicObject,
    spine: &Spine,
    module: Arc<LoadedModule>,
    leaving: Leaving,
) -> Result<Option<Duration>, PassError> {
    let Observation { observed, children } = observe::observe(
        parent,
        &spine.children,
        &spine.related,
        spine.setup.spec.config.as_ref(),
    );
    let reference = parent.object_ref(&spine.setup.kinds.parent.resource);
    let events = &spine.setup.events;
    let holds_finalizer = finalizer::has(&parent.metadata, FINALIZER);
    if spine.setup.spec.finalizer && holds_finalizer {
        let finalized = match spine.setup.caller.finalize(module, observed).await {
            Ok(finalized) => finalized,
            Err(error) => {
                if leaving == Leaving::Deleted {
                    report_failure(parent, spine, error.reason(), &error.to_string()).await;
                }
                return Err(PassError::Finalize(error));
            }
        };
        events.guest(&reference, &finalized.events).await;
        if !finalized.done {
            let retry = finalized.requeue_after.unwrap_or(FINALIZE_RETRY);
            if leaving == Leaving::Deleted {
                let readiness = Readiness::finalizing(format!(
                    "being deleted: finalize answered not done yet; asking again in {} s",
                    retry.as_secs_f64().ceil()
                ));
                write_status(parent, spine, None, &readiness).await?;
            }
            return Ok(Some(retry));
        }
    }
    let count: usize = children.iter().map(Vec::len).sum();
    write_children(parent, spine, &children, &[]).await?;
    spine
        .requests
        .forget(parent.metadata.uid.as_deref().unwrap_or_default());
    if leaving == Leaving::Deselected {
        // The labels and annotations it set go with the reconciler.
        let none = BTreeMap::new();
        set_parent_metadata(parent, spine, Some(&none), Some(&none)).await?;
    }
    if holds_finalizer {
        finalizer::remove(
            &spine.setup.client,
            &spine.setup.kinds.parent,
            parent,
            FINALIZER,
        )
        .await?;
    }
    let (action, reason, why) = match leaving {
        Leaving::Deleted => ("Finalize", "Finalized", "the parent is being deleted"),
        Leaving::Deselected => (
            "Deselect",
            "Deselected",
            "its labels no longer match spec.parentSelector",
        ),
    };
    let finalized = if spine.setup.spec.finalizer {
        "finalize answered done; "
    } else {
        ""
    };
    let message = format!(
        "{finalized}{why}: {count} children deleted or released by their delete policy{}",
        if holds_finalizer {
            ", finalizer removed"
        } else {
            ""
        }
    );
    tracing::info!(reconciler = %spine.setup.key, parent = %super::pass::display_name(parent), reason, "{message}");
    events.normal(&reference, action, reason, &message).await;
    Ok(None)
}
