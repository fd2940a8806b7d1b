//! Why a module's bytes could not be had from its ConfigMaps.

use std::io;

/// A module source that does not yield a usable module; the old module (if
/// any) keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `spec.module` names neither `configMapRef` nor `parts`.
    #[error(
        "spec.module names no ConfigMap; set `configMapRef` or `parts` (e.g. with `sous push`)"
    )]
    NoModuleSource,
    /// `spec.module` names both `configMapRef` and `parts`.
    #[error("spec.module sets both `configMapRef` and `parts`; keep one of them")]
    AmbiguousModuleSource,
    /// A ConfigMap of the module does not exist.
    #[error(
        "module ConfigMap `{name}` does not exist; create it (e.g. with `sous push`) or fix spec.module"
    )]
    ConfigMapNotFound {
        /// The ConfigMap's name.
        name: String,
    },
    /// The ConfigMap exists but has no such key.
    #[error(
        "module ConfigMap `{config_map}` has no key `{key}` in binaryData; upload the module there or fix spec.module"
    )]
    ModuleKeyMissing {
        /// The ConfigMap's name.
        config_map: String,
        /// The key.
        key: String,
    },
    /// The key is in `data` (text), which cannot hold a module's bytes.
    #[error(
        "module ConfigMap `{config_map}` has key `{key}` in `data` (text); put the module in `binaryData` (e.g. `kubectl create configmap --from-file` or `sous push`)"
    )]
    ModuleNotBinary {
        /// The ConfigMap's name.
        config_map: String,
        /// The key.
        key: String,
    },
    /// The bytes are not WebAssembly, raw or zstd- or gzip-compressed.
    #[error(
        "the module is not WebAssembly (raw, zstd or gzip): {found}; upload the `.wasm` component (e.g. with `sous push`)"
    )]
    UnknownModuleFormat {
        /// What the bytes look like instead.
        found: String,
    },
    /// The compressed bytes do not decompress.
    #[error("the module's {format} data is corrupt ({source}); upload it again")]
    DecompressFailed {
        /// `zstd` or `gzip`.
        format: &'static str,
        /// The decoder's complaint.
        #[source]
        source: io::Error,
    },
    /// The uncompressed module exceeds the size the host accepts.
    #[error("the module is larger than {limit} bytes uncompressed; make it smaller")]
    ModuleTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The module's sha256 is not the pinned one.
    #[error(
        "the module's sha256 is {actual} but spec.module.sha256 pins {expected}; upload the pinned module or update the pin"
    )]
    DigestMismatch {
        /// The pin.
        expected: String,
        /// The digest of the module found.
        actual: String,
    },
    /// The pin is not a sha256.
    #[error(
        "spec.module.sha256 `{pin}` is not a sha256; write 64 hex digits (as `sha256sum` prints them)"
    )]
    InvalidDigestPin {
        /// The pin as written.
        pin: String,
    },
}

impl SourceError {
    /// The reason of the `ModuleReady=False` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoModuleSource => "NoModuleSource",
            Self::AmbiguousModuleSource => "AmbiguousModuleSource",
            Self::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            Self::ModuleKeyMissing { .. } => "ModuleKeyMissing",
            Self::ModuleNotBinary { .. } => "ModuleNotBinary",
            Self::UnknownModuleFormat { .. } => "UnknownModuleFormat",
            Self::DecompressFailed { .. } => "DecompressFailed",
            Self::ModuleTooLarge { .. } => "ModuleTooLarge",
            Self::DigestMismatch { .. } => "DigestMismatch",
            Self::InvalidDigestPin { .. } => "InvalidDigestPin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct_upper_camel_case_words() {
        let text = |s: &str| s.to_string();
        let errors = [
            SourceError::NoModuleSource,
            SourceError::AmbiguousModuleSource,
            SourceError::ConfigMapNotFound { name: text("m") },
            SourceError::ModuleKeyMissing {
                config_map: text("m"),
                key: text("k"),
            },
            SourceError::ModuleNotBinary {
                config_map: text("m"),
                key: text("k"),
            },
            SourceError::UnknownModuleFormat { found: text("x") },
            SourceError::DecompressFailed {
                format: "zstd",
                source: io::Error::other("x"),
            },
            SourceError::ModuleTooLarge { limit: 1 },
            SourceError::DigestMismatch {
                expected: text("a"),
                actual: text("b"),
            },
            SourceError::InvalidDigestPin { pin: text("p") },
        ];
        let mut reasons: Vec<_> = errors.iter().map(SourceError::reason).collect();
        for reason in &reasons {
            assert!(
                reason.starts_with(|c: char| c.is_ascii_uppercase()),
                "{reason}"
            );
            assert!(
                reason.chars().all(|c| c.is_ascii_alphanumeric()),
                "{reason}"
            );
        }
        for error in &errors {
            let message = error.to_string();
            assert!(
                !message.contains('\n') && message.contains("; "),
                "{message}"
            );
        }
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), errors.len());
    }
}
