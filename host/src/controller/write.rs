//! Stage "write": a pass's plan is checked whole, then executed. Every
//! write is first sent as a server-side dry run (`dryRun=All`: admission,
//! RBAC, quota, schema and ownership all answer, nothing is stored); one
//! refusal and nothing is written, the parent's condition naming the child
//! and the API server's reason. Then the writes are made, several at once:
//! applies first, prunes after.

use futures::{StreamExt, TryStreamExt, stream};

use super::apply::{self, ApplyError};
use super::children::OwnWrites;
use super::kinds::Kind;
use super::plan::{Step, WritePlan};
use super::prune;
use crate::crd::ReconcilerKey;

/// Writes of one plan in flight at once.
const CONCURRENT_WRITES: usize = 8;

/// Where a plan is written.
pub struct Writer<'a> {
    /// The client writes are made with (the reconciler's identity).
    pub client: &'a kube::Client,
    /// The server-side apply field manager.
    pub field_manager: &'a str,
    /// The reconciler's child kinds (a step names its kind by index).
    pub kinds: &'a [Kind],
    /// Where writes are recorded so their watch events trigger nothing.
    pub own_writes: &'a OwnWrites,
    /// The reconciler (for logs).
    pub reconciler: &'a ReconcilerKey,
    /// The parent, as `namespace/name` (for logs).
    pub parent: &'a str,
}

impl Writer<'_> {
    /// Checks every step of `plan` with a dry run, then, if none is refused,
    /// makes them: applies first, prunes after, several at once.
    pub async fn write(&self, plan: &WritePlan<'_>) -> Result<(), ApplyError> {
        let all: Vec<&Step> = plan.steps.iter().collect();
        self.each(&all, true).await?;
        let (applies, prunes): (Vec<&Step>, Vec<&Step>) = all
            .into_iter()
            .partition(|step| matches!(step, Step::Apply { .. }));
        self.each(&applies, false).await?;
        self.each(&prunes, false).await
    }

    async fn each(&self, steps: &[&Step<'_>], dry_run: bool) -> Result<(), ApplyError> {
        // Collected first: a lazily mapped iterator here makes the pass's
        // future lose `Send` (a higher-ranked lifetime the compiler cannot
        // prove).
        let writes: Vec<_> = steps.iter().map(|step| self.step(step, dry_run)).collect();
        stream::iter(writes)
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect()
            .await
    }

    async fn step(&self, step: &Step<'_>, dry_run: bool) -> Result<(), ApplyError> {
        match step {
            Step::Apply {
                kind,
                child,
                before,
                ..
            } => {
                let kind = &self.kinds[*kind];
                if dry_run {
                    return apply::apply(self.client, kind, child, self.field_manager, true)
                        .await
                        .map(drop);
                }
                let metadata =
                    serde_json::from_value(child["metadata"].clone()).unwrap_or_default();
                self.own_writes.record(&kind.resource.kind, &metadata);
                let applied =
                    apply::apply(self.client, kind, child, self.field_manager, false).await;
                let unchanged = applied.as_ref().is_ok_and(|applied| {
                    before.is_some_and(|o| {
                        o.metadata.resource_version == applied.metadata.resource_version
                    })
                });
                if applied.is_err() || unchanged {
                    // No watch event will come for this write.
                    self.own_writes.forget(&kind.resource.kind, &metadata);
                }
                applied.map(drop)
            }
            Step::Prune { kind, object } => {
                let kind = &self.kinds[*kind];
                if !dry_run {
                    self.own_writes
                        .record(&kind.resource.kind, &object.metadata);
                }
                prune::delete(self.client, kind, object, dry_run).await?;
                if !dry_run {
                    tracing::info!(reconciler = %self.reconciler, parent = self.parent, child = ?object.metadata.name, kind = %kind.resource.kind, "pruned a child no longer desired");
                }
                Ok(())
            }
        }
    }
}
