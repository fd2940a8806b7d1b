//! A module from its stored parts: concatenated, decoded, checked against the
//! sha256 pin.

use std::fmt;

use super::{SourceError, decode};
use crate::runtime::Digest;

/// A module's uncompressed bytes and their sha256.
#[derive(Clone, PartialEq, Eq)]
pub struct ModuleBytes {
    /// The WebAssembly module.
    pub bytes: Vec<u8>,
    /// The sha256 of `bytes`.
    pub digest: Digest,
}

impl fmt::Debug for ModuleBytes {
    /// The size and digest, not megabytes of bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleBytes")
            .field("len", &self.bytes.len())
            .field("digest", &self.digest)
            .finish()
    }
}

/// The module stored as `parts`, in order; `pin` is the expected sha256 (hex)
/// of the uncompressed module.
pub fn assemble(parts: &[&[u8]], pin: Option<&str>) -> Result<ModuleBytes, SourceError> {
    let pin = pin.map(parse_pin).transpose()?;
    let bytes = decode::decode(parts.concat())?;
    let digest = Digest::of(&bytes);
    if let Some(expected) = pin {
        let actual = digest.to_string();
        if actual != expected {
            return Err(SourceError::DigestMismatch { expected, actual });
        }
    }
    Ok(ModuleBytes { bytes, digest })
}

/// The pin in lowercase, if it is 64 hex digits.
fn parse_pin(pin: &str) -> Result<String, SourceError> {
    if pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(pin.to_ascii_lowercase())
    } else {
        Err(SourceError::InvalidDigestPin {
            pin: pin.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x0d\x00\x01\x00 the rest of a component";

    fn sha256(bytes: &[u8]) -> String {
        Digest::of(bytes).to_string()
    }

    #[test]
    fn parts_are_concatenated_in_order_and_the_digest_is_of_the_module() {
        let compressed = zstd::encode_all(MODULE, 3).unwrap();
        let (a, b) = compressed.split_at(compressed.len() / 2);
        let module = assemble(&[a, b], None).unwrap();
        assert_eq!(module.bytes, MODULE);
        assert_eq!(module.digest, Digest::of(MODULE));
        assert!(assemble(&[b, a], None).is_err(), "order matters");
    }

    #[test]
    fn a_matching_pin_passes_in_either_case() {
        let pin = sha256(MODULE);
        assert!(assemble(&[MODULE], Some(&pin)).is_ok());
        assert!(assemble(&[MODULE], Some(&pin.to_uppercase())).is_ok());
    }

    #[test]
    fn a_pin_over_the_compressed_bytes_does_not_match() {
        let compressed = zstd::encode_all(MODULE, 3).unwrap();
        let wrong = sha256(&compressed);
        let error = assemble(&[&compressed], Some(&wrong)).unwrap_err();
        assert_eq!(error.reason(), "DigestMismatch");
        assert_eq!(
            error.to_string(),
            format!(
                "the module's sha256 is {} but spec.module.sha256 pins {wrong}; upload the pinned module or update the pin",
                sha256(MODULE)
            )
        );
    }

    #[test]
    fn a_pin_that_is_not_a_sha256_is_its_own_error() {
        for pin in [
            "",
            "abc",
            &format!("sha256:{}", sha256(MODULE)),
            &"g".repeat(64),
        ] {
            let error = assemble(&[MODULE], Some(pin)).unwrap_err();
            assert_eq!(error.reason(), "InvalidDigestPin", "{pin}");
            assert!(error.to_string().contains("write 64 hex digits"));
        }
    }
}
