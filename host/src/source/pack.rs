//! The other direction, for `sous push`: a module compressed and cut into
//! parts that each fit in one ConfigMap.

use zstd::zstd_safe::CParameter;

/// The default largest part (900 KiB): one part per ConfigMap stays under
/// Kubernetes' 1 MiB limit on a ConfigMap's data, with room for metadata.
pub const MAX_PART_BYTES: usize = 900 << 10;

/// The zstd level `pack` uses. Measured on an 18.4 MB Python component: level
/// 3 gives 5.89 MB in 0.14 s, 9 gives 5.09 MB in 0.5 s, 19 gives 4.45 MB in
/// 8.4 s; decompression takes under 0.05 s at every level. 9 is the knee:
/// a push stays interactive and the result is within 15% of the best.
pub const COMPRESSION_LEVEL: i32 = 9;

/// `module` zstd-compressed (with a checksum, so corruption in transit is
/// caught on decompression) and cut into parts of at most `max_part_bytes`;
/// concatenated in order they are what `assemble` reads back.
///
/// # Panics
/// If `max_part_bytes` is 0.
pub fn pack(module: &[u8], max_part_bytes: usize) -> Vec<Vec<u8>> {
    assert!(max_part_bytes > 0, "parts must hold at least one byte");
    compress(module)
        .chunks(max_part_bytes)
        .map(<[u8]>::to_vec)
        .collect()
}

fn compress(module: &[u8]) -> Vec<u8> {
    let mut compressor = zstd::bulk::Compressor::new(COMPRESSION_LEVEL)
        .expect("COMPRESSION_LEVEL is a valid zstd level");
    compressor
        .set_parameter(CParameter::ChecksumFlag(true))
        .expect("the checksum flag is a valid zstd parameter");
    compressor
        .compress(module)
        .expect("compressing into a buffer of the compress bound cannot fail")
}

#[cfg(test)]
mod tests {
    use super::super::assemble;
    use super::*;

    /// A stand-in component that compresses about as well as code does:
    /// pseudo-random bytes from a small alphabet.
    fn component(len: usize) -> Vec<u8> {
        let mut state: u32 = 1;
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        bytes.extend((bytes.len()..len).map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 28) as u8
        }));
        bytes
    }

    fn unpack(parts: &[Vec<u8>]) -> Vec<u8> {
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        assemble(&slices, None).unwrap().bytes
    }

    #[test]
    fn a_small_module_is_one_smaller_part() {
        let module = component(200_000);
        let parts = pack(&module, MAX_PART_BYTES);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].len() < module.len() * 3 / 4, "{}", parts[0].len());
        assert_eq!(unpack(&parts), module);
    }

    #[test]
    fn parts_never_exceed_the_limit_and_round_trip() {
        let module = component(300_000);
        for max in [1, 1000, 4096] {
            let parts = pack(&module, max);
            assert!(parts.len() > 1);
            assert!(
                parts
                    .iter()
                    .all(|part| !part.is_empty() && part.len() <= max)
            );
            assert_eq!(unpack(&parts), module, "max {max}");
        }
    }

    #[test]
    fn a_corrupted_part_is_caught_by_the_checksum() {
        let module = component(100_000);
        let mut parts = pack(&module, 1000);
        let last = parts.len() - 1;
        // Flip a bit near the end of the frame, past what a block's own
        // structure would catch.
        let at = parts[last].len() - 6;
        parts[last][at] ^= 1;
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        assert!(assemble(&slices, None).is_err());
    }
}
