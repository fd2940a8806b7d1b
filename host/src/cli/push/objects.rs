//! The objects of one push, built without a cluster: one ConfigMap per
//! compressed part, and the Reconciler or ClusterReconciler pointing at them
//! with the sha256 pin.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use super::PushArgs;
use crate::crd::{
    ChildSpec, ClusterReconciler, ClusterSpec, ConfigMapKey, Mode, ModuleSource, NamespacedSpec,
    Reconciler, ReconcilerKey, ReconcilerSpec, RelatedKind, TypeMeta,
};
use crate::runtime::Digest;
use crate::source;
use crate::tenancy::grants::Grants;
use crate::validate::TypeRef;

/// The label naming the reconciler a module ConfigMap belongs to.
pub(super) const MODULE_OF_LABEL: &str = "sous.dev/module-of";
/// The key of a part in its ConfigMap's `binaryData`.
const PART_KEY: &str = "module.zst";
/// The longest object name Kubernetes accepts.
const MAX_NAME: usize = 253;

/// Everything one push writes.
#[derive(Debug)]
pub(super) struct Upload {
    /// Namespace of the module ConfigMaps.
    pub(super) namespace: String,
    /// Identity of the reconciler, for the label and progress lines.
    pub(super) key: ReconcilerKey,
    /// One ConfigMap per part, in order.
    pub(super) config_maps: Vec<ConfigMap>,
    /// The Reconciler or ClusterReconciler pointing at them.
    pub(super) reconciler: ReconcilerObject,
    /// Size of the compressed module.
    pub(super) compressed_bytes: usize,
    /// The ServiceAccount, Role and RoleBinding of a namespaced Reconciler.
    pub(super) grants: Option<Grants>,
}

/// The object `spec.module` lives in.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum ReconcilerObject {
    Namespaced(Box<Reconciler>),
    Cluster(Box<ClusterReconciler>),
}

impl Upload {
    /// The objects to write, built without a cluster.
    pub(super) fn build(
        args: &PushArgs,
        module: &source::ModuleBytes,
        namespace: &str,
        config: Option<Value>,
        grants: Option<Grants>,
    ) -> anyhow::Result<Self> {
        let key = if args.cluster {
            ReconcilerKey::cluster(&args.name)
        } else {
            ReconcilerKey::namespaced(namespace, &args.name)
        };
        let parts = source::pack(&module.bytes, args.max_part_bytes);
        let compressed_bytes = parts.iter().map(Vec::len).sum();
        let names = part_names(&args.name, module.digest, parts.len())?;
        let labels = BTreeMap::from([(MODULE_OF_LABEL.to_string(), key.label_value())]);
        let config_maps = names
            .iter()
            .zip(parts)
            .map(|(name, part)| ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.to_string()),
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                },
                binary_data: Some(BTreeMap::from([(PART_KEY.to_string(), ByteString(part))])),
                ..ConfigMap::default()
            })
            .collect();
        let mut keys: Vec<ConfigMapKey> = names
            .into_iter()
            .map(|name| ConfigMapKey {
                name,
                key: PART_KEY.to_string(),
            })
            .collect();
        let spec = ReconcilerSpec {
            parent: type_meta(&args.parent_kind),
            mode: if args.decorator {
                Mode::Decorator
            } else {
                Mode::Composite
            },
            parent_selector: None,
            children: args
                .child_kinds
                .iter()
                .map(|kind| ChildSpec::of(type_meta(kind)))
                .collect(),
            related: args
                .related_kinds
                .iter()
                .map(|kind| RelatedKind {
                    api_version: kind.api_version.clone(),
                    kind: kind.kind.clone(),
                    namespace: None,
                    name: None,
                    selector: None,
                    match_labels: BTreeMap::new(),
                    on_request: false,
                })
                .collect(),
            module: ModuleSource {
                config_map_ref: (keys.len() == 1).then(|| keys.remove(0)),
                parts: keys,
                sha256: Some(module.digest.to_string()),
                namespace: None,
            },
            policy: None,
            service_account_name: grants
                .as_ref()
                .and_then(|grants| grants.service_account.metadata.name.clone())
                .or_else(|| args.service_account.clone()),
            finalizer: args.finalizer,
            resync_seconds: None,
            max_concurrent_reconciles: None,
            config,
        };
        let reconciler = if args.cluster {
            ReconcilerObject::Cluster(Box::new(ClusterReconciler::new(
                &args.name,
                ClusterSpec(spec),
            )))
        } else {
            let mut object = Reconciler::new(&args.name, NamespacedSpec(spec));
            object.metadata.namespace = Some(namespace.to_string());
            ReconcilerObject::Namespaced(Box::new(object))
        };
        Ok(Self {
            namespace: namespace.to_string(),
            key,
            config_maps,
            reconciler,
            compressed_bytes,
            grants,
        })
    }

    /// Prints every object as multi-document YAML on stdout.
    pub(super) fn print(&self) -> anyhow::Result<()> {
        let mut yaml = String::new();
        if let Some(grants) = &self.grants {
            for document in [
                serde_yaml_ng::to_string(&grants.service_account)?,
                serde_yaml_ng::to_string(&grants.role)?,
                serde_yaml_ng::to_string(&grants.binding)?,
            ] {
                yaml.push_str("---\n");
                yaml.push_str(&document);
            }
        }
        for config_map in &self.config_maps {
            yaml.push_str("---\n");
            yaml.push_str(&serde_yaml_ng::to_string(config_map)?);
        }
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml_ng::to_string(&self.reconciler)?);
        print!("{yaml}");
        Ok(())
    }
}

/// `<name>-<first 10 hex digits of the digest>-<i>`: content-addressed, so a
/// new module never overwrites the parts the running one was read from.
fn part_names(name: &str, digest: Digest, count: usize) -> anyhow::Result<Vec<String>> {
    let digest = digest.to_string();
    let names: Vec<String> = (0..count)
        .map(|i| format!("{name}-{}-{i}", &digest[..10]))
        .collect();
    let longest = names.last().map_or(0, String::len);
    anyhow::ensure!(
        longest <= MAX_NAME,
        "reconciler name `{name}` is too long for its module ConfigMap names ({longest} > {MAX_NAME} characters); use a shorter --name"
    );
    Ok(names)
}

fn type_meta(kind: &TypeRef) -> TypeMeta {
    TypeMeta {
        api_version: kind.api_version.clone(),
        kind: kind.kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use kube::ResourceExt;

    use super::*;
    use crate::cli::{Cli, Command};

    const MODULE: &[u8] = b"\0asm\x0d\x00\x01\x00 a component, as far as push cares";

    fn args(extra: &[&str]) -> PushArgs {
        let mut argv = vec![
            "sous",
            "push",
            "--name",
            "my-app",
            "--module",
            "m.wasm",
            "--parent-kind",
            "example.com/v1/MyApp",
            "--child-kind",
            "apps/v1/Deployment",
        ];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Push(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn build(args: &PushArgs, module: &[u8]) -> Upload {
        let module = source::assemble(&[module], None).unwrap();
        Upload::build(args, &module, "shop", None, None).unwrap()
    }

    /// The module bytes back from the built ConfigMaps, through the same
    /// reading the host does.
    fn read_back(upload: &Upload) -> source::ModuleBytes {
        let spec = match &upload.reconciler {
            ReconcilerObject::Namespaced(object) => &object.spec.0,
            ReconcilerObject::Cluster(object) => &object.spec.0,
        };
        source::from_config_maps(&spec.module, |name| {
            upload
                .config_maps
                .iter()
                .find(|cm| cm.metadata.name.as_deref() == Some(name))
        })
        .unwrap()
    }

    #[test]
    fn a_small_module_is_one_config_map_named_by_its_digest() {
        let upload = build(&args(&[]), MODULE);
        let digest = Digest::of(MODULE).to_string();
        assert_eq!(upload.config_maps.len(), 1);
        let config_map = &upload.config_maps[0];
        assert_eq!(config_map.name_any(), format!("my-app-{}-0", &digest[..10]));
        assert_eq!(config_map.namespace().as_deref(), Some("shop"));
        assert_eq!(config_map.labels()[MODULE_OF_LABEL], "shop.my-app");
        let ReconcilerObject::Namespaced(reconciler) = &upload.reconciler else {
            panic!("expected a namespaced Reconciler");
        };
        assert_eq!(reconciler.namespace().as_deref(), Some("shop"));
        let module = &reconciler.spec.0.module;
        assert_eq!(
            module.config_map_ref.as_ref().unwrap().name,
            config_map.name_any()
        );
        assert!(module.parts.is_empty());
        assert_eq!(module.sha256.as_deref(), Some(digest.as_str()));
        assert_eq!(read_back(&upload).bytes, MODULE);
    }

    #[test]
    fn a_cluster_reconciler_with_many_parts() {
        // Pseudo-random bytes, so that compression leaves several parts.
        let mut state = 1u32;
        let mut module = MODULE.to_vec();
        module.extend((0..20_000).map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        }));
        let upload = build(
            &args(&["--cluster", "--max-part-bytes", "1000", "--finalizer"]),
            &module,
        );
        assert!(upload.config_maps.len() > 2, "{}", upload.config_maps.len());
        assert_eq!(upload.config_maps[0].labels()[MODULE_OF_LABEL], "my-app");
        let ReconcilerObject::Cluster(reconciler) = &upload.reconciler else {
            panic!("expected a ClusterReconciler");
        };
        assert_eq!(reconciler.namespace(), None);
        let spec = &reconciler.spec.0;
        assert!(spec.finalizer);
        assert_eq!(spec.module.config_map_ref, None);
        assert_eq!(spec.module.parts.len(), upload.config_maps.len());
        assert_eq!(read_back(&upload).bytes, module);
    }

    #[test]
    fn kinds_land_in_the_spec() {
        let upload = build(
            &args(&[
                "--child-kind",
                "v1/Service",
                "--related-kind",
                "v1/Secret",
                "--service-account",
                "my-app",
            ]),
            MODULE,
        );
        let ReconcilerObject::Namespaced(reconciler) = &upload.reconciler else {
            panic!("expected a namespaced Reconciler");
        };
        let spec = &reconciler.spec.0;
        assert_eq!(spec.parent.api_version, "example.com/v1");
        assert_eq!(spec.parent.kind, "MyApp");
        let children: Vec<_> = spec.children.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(children, ["Deployment", "Service"]);
        assert_eq!(spec.related[0].kind, "Secret");
        assert_eq!(spec.service_account_name.as_deref(), Some("my-app"));
    }

    #[test]
    fn a_name_too_long_for_the_part_names_is_refused() {
        let error = part_names(&"a".repeat(250), Digest::of(MODULE), 1).unwrap_err();
        assert!(
            error.to_string().ends_with("; use a shorter --name"),
            "{error}"
        );
        assert!(part_names(&"a".repeat(240), Digest::of(MODULE), 10).is_ok());
    }
}
