//! `sous push`: upload a module into content-addressed ConfigMaps and point a
//! Reconciler at them, in one atomic spec change, then delete the parts no
//! longer referenced.

mod apply;
mod objects;
mod rbac;

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clap::builder::RangedU64ValueParser;
use kube::Client;
use serde_json::Value;

use super::DEFAULT_HOST_NAMESPACE;
use crate::inputs::{self, InputError};
use crate::source::{self, MAX_PART_BYTES};
use crate::tenancy;
use crate::validate::TypeRef;
use objects::Upload;

/// Arguments of `sous push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The reconciler's name; its module ConfigMaps are named after it.
    #[arg(long)]
    pub name: String,
    /// The reconciler component (`.wasm`, or the same zstd- or gzip-compressed).
    #[arg(long)]
    pub module: PathBuf,
    /// Namespace of the Reconciler and its module ConfigMaps; with
    /// `--cluster`, the host's namespace, where the ConfigMaps go [default:
    /// the kube context's namespace; with `--cluster`, sous-system].
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Push a ClusterReconciler (parents in every namespace) instead of a
    /// namespaced Reconciler.
    #[arg(long)]
    pub cluster: bool,
    /// The watched kind, as apiVersion/Kind (e.g. `example.com/v1/MyApp`).
    #[arg(long, value_parser = TypeRef::parse)]
    pub parent_kind: TypeRef,
    /// Decorate the parents (`spec.mode: Decorator`): objects of any kind,
    /// whose status the host never writes.
    #[arg(long)]
    pub decorator: bool,
    /// A kind the reconciler produces, as apiVersion/Kind; repeatable.
    #[arg(long = "child-kind", value_parser = TypeRef::parse)]
    pub child_kinds: Vec<TypeRef>,
    /// A kind passed to the guest read-only, as apiVersion/Kind; repeatable.
    #[arg(long = "related-kind", value_parser = TypeRef::parse)]
    pub related_kinds: Vec<TypeRef>,
    /// The reconciler's configuration (`spec.config`), a YAML or JSON file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Add `sous.dev/finalizer` to parents and call the guest's `finalize`
    /// before they go.
    #[arg(long)]
    pub finalizer: bool,
    /// The ServiceAccount the reconciler acts as (`spec.serviceAccountName`)
    /// [default for a namespaced Reconciler: its name].
    #[arg(long)]
    pub service_account: Option<String>,
    /// Do not create the ServiceAccount, Role and RoleBinding that grant a
    /// namespaced Reconciler what its kinds need (someone else manages them).
    #[arg(long)]
    pub no_rbac: bool,
    /// Largest part in bytes: a bigger compressed module is split over
    /// several ConfigMaps.
    #[arg(long, default_value_t = MAX_PART_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_PART_BYTES as u64))]
    pub max_part_bytes: usize,
    /// Print the objects as multi-document YAML instead of applying them.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `sous push`; progress on stderr, any error one line.
pub fn run(args: &PushArgs) -> anyhow::Result<()> {
    let stored = inputs::read_module(&args.module)?;
    let module = source::assemble(&[&stored], None)
        .map_err(|e| InputError::new(&args.module, e.to_string()))?;
    let config = args.config.as_deref().map(inputs::read_value).transpose()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(push(args, &module, config))
}

async fn push(
    args: &PushArgs,
    module: &source::ModuleBytes,
    config: Option<Value>,
) -> anyhow::Result<()> {
    let cluster = if args.dry_run {
        None
    } else {
        Some(kube_config().await?)
    };
    let namespace = match (&args.namespace, args.cluster, &cluster) {
        (Some(namespace), _, _) => namespace.clone(),
        (None, true, _) => DEFAULT_HOST_NAMESPACE.to_string(),
        (None, false, Some(config)) => config.default_namespace.clone(),
        (None, false, None) => kube_config().await?.default_namespace,
    };
    let client = cluster.map(Client::try_from).transpose()?;
    let account = args.service_account.as_deref().unwrap_or(&args.name);
    let needs = match (&client, args.cluster || args.no_rbac) {
        (_, true) => None,
        (None, false) => Some(rbac::offline_needs(args)),
        (Some(client), false) => {
            Some(rbac::discovered_needs(client, args, &namespace, account).await)
        }
    };
    let grants = needs.map(|needs| tenancy::grants::grants(&namespace, account, &needs));
    let upload = Upload::build(args, module, &namespace, config, grants)?;
    eprintln!(
        "module {}: sha256 {}, {} bytes, {} compressed, {} part(s)",
        args.module.display(),
        module.digest,
        module.bytes.len(),
        upload.compressed_bytes,
        upload.config_maps.len()
    );
    match client {
        None => upload.print(),
        Some(client) => upload.apply(client).await,
    }
}

async fn kube_config() -> anyhow::Result<kube::Config> {
    kube::Config::infer().await.context(
        "cannot find a cluster: set KUBECONFIG or a current kube context (--dry-run needs none when --namespace is given)",
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn part_size_is_bounded_by_the_config_map_limit() {
        let (largest, too_big) = (MAX_PART_BYTES.to_string(), (MAX_PART_BYTES + 1).to_string());
        for (value, valid) in [
            ("0", false),
            ("1", true),
            (&largest, true),
            (&too_big, false),
        ] {
            let parsed = Cli::try_parse_from([
                "sous",
                "push",
                "--name",
                "x",
                "--module",
                "m.wasm",
                "--parent-kind",
                "v1/ConfigMap",
                "--max-part-bytes",
                value,
            ]);
            assert_eq!(parsed.is_ok(), valid, "{value}");
        }
    }
}
