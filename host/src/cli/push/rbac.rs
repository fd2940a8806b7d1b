//! The RBAC half of pushing a namespaced Reconciler: the grants of
//! `crate::tenancy::grants` for its kinds, named through discovery when
//! there is a cluster (by the plural convention offline), with warnings for
//! what a Role cannot grant, and a refusal that says whom to ask.

use kube::Client;

use super::PushArgs;
use crate::tenancy::grants::{self, Grants, Need, Use};
use crate::validate::TypeRef;

/// The field manager of everything `sous push` writes.
pub(super) const FIELD_MANAGER: &str = "sous-push";

fn uses(args: &PushArgs) -> Vec<(Use, TypeRef)> {
    grants::uses(
        args.parent_kind.clone(),
        args.child_kinds.iter().cloned(),
        args.related_kinds.iter().cloned(),
    )
}

/// The needs of the push, named by convention (no cluster).
pub(super) fn offline_needs(args: &PushArgs) -> Vec<Need> {
    grants::conventional(&uses(args))
}

/// The needs of the push, named through discovery, with a warning for each
/// kind not served yet and each cluster-scoped kind (which an administrator
/// must grant with a ClusterRole).
pub(super) async fn discovered_needs(
    client: &Client,
    args: &PushArgs,
    namespace: &str,
    account: &str,
) -> Vec<Need> {
    let discovered = grants::discover(client, &uses(args)).await;
    for (kind, error) in &discovered.unserved {
        eprintln!(
            "warning: {kind} is not served yet ({error}); granting it by the plural convention"
        );
    }
    for (kind, plural) in &discovered.cluster_scoped {
        eprintln!(
            "warning: {kind} is cluster-scoped, so a Role cannot grant it: ask a cluster administrator for a ClusterRole granting get, list and watch on {plural}, bound to ServiceAccount {namespace}/{account}"
        );
    }
    discovered.needs
}

/// Applies the ServiceAccount, Role and RoleBinding; a refusal says what to
/// ask an administrator for.
pub(super) async fn apply(client: &Client, grants: &Grants) -> anyhow::Result<()> {
    match grants.apply(client, FIELD_MANAGER).await {
        Ok(()) => {
            let role = &grants.role.metadata;
            eprintln!(
                "applied ServiceAccount, Role and RoleBinding {}/{}",
                role.namespace.as_deref().unwrap_or_default(),
                role.name.as_deref().unwrap_or_default()
            );
            Ok(())
        }
        Err(error) => match &error.source {
            kube::Error::Api(status) if status.code == 403 => anyhow::bail!(
                "you may not create {} {}/{} ({}): ask an administrator to apply the ServiceAccount, Role and RoleBinding that `sous push --dry-run` prints, or to let you manage them in `{}`; or push with --no-rbac --service-account NAME, naming a ServiceAccount that already has the access",
                error.kind,
                error.namespace,
                error.name,
                status.message,
                error.namespace
            ),
            _ => Err(error.into()),
        },
    }
}
