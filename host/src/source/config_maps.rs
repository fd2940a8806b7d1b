//! A module from the ConfigMaps named by a reconciler's `spec.module`.

use k8s_openapi::api::core::v1::ConfigMap;

use super::{ModuleBytes, SourceError, assemble};
use crate::crd::{ConfigMapKey, ModuleSource};

/// The module `source` points at, read through `lookup` (a ConfigMap by
/// name, in the namespace the reconciler reads modules from).
pub fn from_config_maps<'a>(
    source: &ModuleSource,
    lookup: impl Fn(&str) -> Option<&'a ConfigMap>,
) -> Result<ModuleBytes, SourceError> {
    let parts = keys(source)?
        .iter()
        .map(|key| read_part(key, &lookup))
        .collect::<Result<Vec<_>, _>>()?;
    assemble(&parts, source.sha256.as_deref())
}

/// The ConfigMaps `source` reads, each once, in order: the ones to watch.
pub fn config_map_names(source: &ModuleSource) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for key in source.config_map_ref.iter().chain(&source.parts) {
        if !names.contains(&key.name) {
            names.push(key.name.clone());
        }
    }
    names
}

/// The keys to concatenate: `configMapRef` or `parts`, exactly one of them.
fn keys(source: &ModuleSource) -> Result<&[ConfigMapKey], SourceError> {
    match (&source.config_map_ref, source.parts.as_slice()) {
        (Some(key), []) => Ok(std::slice::from_ref(key)),
        (None, []) => Err(SourceError::NoModuleSource),
        (None, parts) => Ok(parts),
        (Some(_), _) => Err(SourceError::AmbiguousModuleSource),
    }
}

fn read_part<'a>(
    key: &ConfigMapKey,
    lookup: &impl Fn(&str) -> Option<&'a ConfigMap>,
) -> Result<&'a [u8], SourceError> {
    let config_map = lookup(&key.name).ok_or_else(|| SourceError::ConfigMapNotFound {
        name: key.name.clone(),
    })?;
    if let Some(bytes) = config_map
        .binary_data
        .as_ref()
        .and_then(|data| data.get(&key.key))
    {
        return Ok(&bytes.0);
    }
    let in_text = config_map
        .data
        .as_ref()
        .is_some_and(|data| data.contains_key(&key.key));
    let (config_map, key) = (key.name.clone(), key.key.clone());
    Err(if in_text {
        SourceError::ModuleNotBinary { config_map, key }
    } else {
        SourceError::ModuleKeyMissing { config_map, key }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::runtime::Digest;

    const MODULE: &[u8] = b"\0asm\x0d\x00\x01\x00 a component split over ConfigMaps";

    fn config_map(name: &str, binary: &[(&str, &[u8])], text: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            binary_data: Some(
                binary
                    .iter()
                    .map(|(key, bytes)| (key.to_string(), ByteString(bytes.to_vec())))
                    .collect(),
            ),
            data: Some(
                text.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ConfigMap::default()
        }
    }

    fn key(name: &str, key: &str) -> ConfigMapKey {
        ConfigMapKey {
            name: name.into(),
            key: key.into(),
        }
    }

    fn read(source: &ModuleSource, config_maps: &[ConfigMap]) -> Result<ModuleBytes, SourceError> {
        from_config_maps(source, |name| {
            config_maps
                .iter()
                .find(|cm| cm.metadata.name.as_deref() == Some(name))
        })
    }

    fn parts(keys: Vec<ConfigMapKey>) -> ModuleSource {
        ModuleSource {
            config_map_ref: None,
            parts: keys,
            sha256: None,
            namespace: None,
        }
    }

    #[test]
    fn one_key_holds_the_whole_module() {
        let source = ModuleSource {
            config_map_ref: Some(key("m", "module.wasm")),
            parts: Vec::new(),
            sha256: Some(Digest::of(MODULE).to_string()),
            namespace: None,
        };
        let module = read(&source, &[config_map("m", &[("module.wasm", MODULE)], &[])]).unwrap();
        assert_eq!(module.bytes, MODULE);
        assert_eq!(config_map_names(&source), ["m"]);
    }

    #[test]
    fn parts_across_keys_and_config_maps_are_read_in_order() {
        let compressed = zstd::encode_all(MODULE, 3).unwrap();
        let (a, rest) = compressed.split_at(10);
        let (b, c) = rest.split_at(10);
        let maps = [
            config_map("first", &[("0", a), ("2", c)], &[]),
            config_map("second", &[("1", b)], &[]),
        ];
        let source = parts(vec![
            key("first", "0"),
            key("second", "1"),
            key("first", "2"),
        ]);
        assert_eq!(read(&source, &maps).unwrap().bytes, MODULE);
        assert_eq!(config_map_names(&source), ["first", "second"]);
        let swapped = parts(vec![
            key("second", "1"),
            key("first", "0"),
            key("first", "2"),
        ]);
        assert_eq!(
            read(&swapped, &maps).unwrap_err().reason(),
            "UnknownModuleFormat"
        );
    }

    #[test]
    fn a_missing_config_map_or_key_is_named() {
        let maps = [config_map("m", &[("module.wasm", MODULE)], &[])];
        let error = read(&parts(vec![key("gone", "module.wasm")]), &maps).unwrap_err();
        assert_eq!(error.reason(), "ConfigMapNotFound");
        assert_eq!(
            error.to_string(),
            "module ConfigMap `gone` does not exist; create it (e.g. with `sous push`) or fix spec.module"
        );
        let error = read(&parts(vec![key("m", "module.zst")]), &maps).unwrap_err();
        assert_eq!(error.reason(), "ModuleKeyMissing");
        assert_eq!(
            error.to_string(),
            "module ConfigMap `m` has no key `module.zst` in binaryData; upload the module there or fix spec.module"
        );
    }

    #[test]
    fn a_module_in_text_data_is_refused_with_the_remedy() {
        let maps = [config_map("m", &[], &[("module.wasm", "AGFzbQ0AAQA=")])];
        let error = read(&parts(vec![key("m", "module.wasm")]), &maps).unwrap_err();
        assert_eq!(error.reason(), "ModuleNotBinary");
        assert!(
            error.to_string().contains("put the module in `binaryData`"),
            "{error}"
        );
    }

    #[test]
    fn exactly_one_of_config_map_ref_and_parts() {
        let maps = [config_map("m", &[("k", MODULE)], &[])];
        let neither = parts(Vec::new());
        assert_eq!(
            read(&neither, &maps).unwrap_err().reason(),
            "NoModuleSource"
        );
        assert!(config_map_names(&neither).is_empty());
        let both = ModuleSource {
            config_map_ref: Some(key("m", "k")),
            parts: vec![key("other", "k")],
            sha256: None,
            namespace: None,
        };
        assert_eq!(
            read(&both, &maps).unwrap_err().reason(),
            "AmbiguousModuleSource"
        );
        assert_eq!(config_map_names(&both), ["m", "other"]);
    }

    #[test]
    fn the_pin_is_checked() {
        let source = ModuleSource {
            config_map_ref: Some(key("m", "k")),
            parts: Vec::new(),
            sha256: Some(Digest::of(b"another module").to_string()),
            namespace: None,
        };
        let maps = [config_map("m", &[("k", MODULE)], &[])];
        assert_eq!(read(&source, &maps).unwrap_err().reason(), "DigestMismatch");
    }
}
