//! Turns a module's stored bytes into the component: zstd or gzip detected by
//! their magic bytes and decompressed under a size cap, raw components passed
//! through.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::SourceError;

/// The largest uncompressed module the host accepts (256 MiB): a
/// decompression bomb stops here instead of exhausting memory.
pub const MAX_MODULE_BYTES: usize = 256 << 20;

const WASM_MAGIC: &[u8] = b"\0asm";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// How stored module bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Wasm,
    Zstd,
    Gzip,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Self::Wasm => "WebAssembly",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
        }
    }

    fn detect(bytes: &[u8]) -> Option<Self> {
        [
            (WASM_MAGIC, Self::Wasm),
            (ZSTD_MAGIC, Self::Zstd),
            (GZIP_MAGIC, Self::Gzip),
        ]
        .into_iter()
        .find_map(|(magic, format)| bytes.starts_with(magic).then_some(format))
    }
}

/// The WebAssembly module in `stored`: `stored` itself when it starts with
/// `\0asm`, else its zstd or gzip decompression, which must be WebAssembly.
pub fn decode(stored: Vec<u8>) -> Result<Vec<u8>, SourceError> {
    decode_capped(stored, MAX_MODULE_BYTES)
}

fn decode_capped(stored: Vec<u8>, limit: usize) -> Result<Vec<u8>, SourceError> {
    let format = Format::detect(&stored).ok_or_else(|| SourceError::UnknownModuleFormat {
        found: format!("found {}", describe(&stored)),
    })?;
    let failed = |source| SourceError::DecompressFailed {
        format: format.name(),
        source,
    };
    let module = match format {
        Format::Wasm => stored,
        Format::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(&stored[..]).map_err(failed)?;
            read_capped(decoder, limit).map_err(failed)?
        }
        Format::Gzip => read_capped(MultiGzDecoder::new(&stored[..]), limit).map_err(failed)?,
    };
    if module.len() > limit {
        return Err(SourceError::ModuleTooLarge { limit });
    }
    match Format::detect(&module) {
        Some(Format::Wasm) => Ok(module),
        _ => Err(SourceError::UnknownModuleFormat {
            found: format!("its {} data holds {}", format.name(), describe(&module)),
        }),
    }
}

/// Reads all of `decoder` but stops one byte past `limit`, so that a bomb
/// costs at most `limit` bytes of memory (the caller refuses the overshoot).
fn read_capped(decoder: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut module = Vec::new();
    decoder.take(limit as u64 + 1).read_to_end(&mut module)?;
    Ok(module)
}

/// What unrecognised bytes look like, for the error.
fn describe(bytes: &[u8]) -> String {
    // `\0asm`, zstd and gzip magic bytes as base64: the bytes went into `data`
    // (or a file) as text instead of raw.
    const BASE64_MAGICS: [&[u8]; 3] = [b"AGFzbQ", b"KLUv/", b"H4sI"];
    if bytes.is_empty() {
        "no bytes at all".into()
    } else if BASE64_MAGICS.iter().any(|magic| bytes.starts_with(magic)) {
        "base64 text (decode it before storing)".into()
    } else {
        let head = &bytes[..bytes.len().min(4)];
        format!("bytes starting {}", hex::encode(head))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    /// A stand-in component: the magic, the component-model version, filler.
    fn component(len: usize) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        bytes.extend((0..len - bytes.len()).map(|i| (i % 251) as u8));
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_raw_component_passes_through() {
        let module = component(1000);
        assert_eq!(decode(module.clone()).unwrap(), module);
    }

    #[test]
    fn zstd_and_gzip_are_decompressed() {
        let module = component(100_000);
        let zstd = zstd::encode_all(&module[..], 3).unwrap();
        assert!(zstd.len() < module.len());
        assert_eq!(decode(zstd).unwrap(), module);
        assert_eq!(decode(gzip(&module)).unwrap(), module);
    }

    #[test]
    fn concatenated_frames_and_members_decode_as_one_module() {
        let module = component(10_000);
        let (head, tail) = module.split_at(4_000);
        let mut zstd = zstd::encode_all(head, 3).unwrap();
        zstd.extend(zstd::encode_all(tail, 3).unwrap());
        assert_eq!(decode(zstd).unwrap(), module);
        let mut gz = gzip(head);
        gz.extend(gzip(tail));
        assert_eq!(decode(gz).unwrap(), module);
    }

    #[test]
    fn garbage_is_described() {
        let error = decode(b"PK\x03\x04zip".to_vec()).unwrap_err();
        assert_eq!(error.reason(), "UnknownModuleFormat");
        assert_eq!(
            error.to_string(),
            "the module is not WebAssembly (raw, zstd or gzip): found bytes starting 504b0304; upload the `.wasm` component (e.g. with `sous push`)"
        );
        let empty = decode(Vec::new()).unwrap_err();
        assert!(
            empty.to_string().contains(": found no bytes at all;"),
            "{empty}"
        );
    }

    #[test]
    fn base64_text_is_recognised_as_such() {
        for text in ["AGFzbQ0AAQA=", "KLUv/QBYAAA=", "H4sIAAAAAAAA"] {
            let error = decode(text.as_bytes().to_vec()).unwrap_err();
            assert!(error.to_string().contains("base64 text"), "{text}: {error}");
        }
    }

    #[test]
    fn compressed_data_that_is_not_webassembly_is_refused() {
        let error = decode(gzip(b"#!/bin/sh\necho hi\n")).unwrap_err();
        assert_eq!(error.reason(), "UnknownModuleFormat");
        assert!(
            error
                .to_string()
                .contains(": its gzip data holds bytes starting 23212f62;"),
            "{error}"
        );
    }

    #[test]
    fn corrupt_compressed_data_fails_to_decompress() {
        let module = component(50_000);
        let mut zstd = zstd::encode_all(&module[..], 3).unwrap();
        zstd.truncate(zstd.len() / 2);
        let error = decode(zstd).unwrap_err();
        assert_eq!(error.reason(), "DecompressFailed");
        assert!(
            error
                .to_string()
                .starts_with("the module's zstd data is corrupt ("),
            "{error}"
        );
        let mut gz = gzip(&module);
        let middle = gz.len() / 2;
        gz[middle] ^= 0xff;
        assert_eq!(decode(gz).unwrap_err().reason(), "DecompressFailed");
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 64 KiB of zeros compress to a few dozen bytes; with a 4 KiB cap the
        // decoder must stop after 4 KiB + 1 instead of expanding it all.
        let mut module = component(16);
        module.resize(64 << 10, 0);
        let limit = 4 << 10;
        for stored in [zstd::encode_all(&module[..], 19).unwrap(), gzip(&module)] {
            assert!(stored.len() < 200, "{}", stored.len());
            let error = decode_capped(stored, limit).unwrap_err();
            assert_eq!(error.reason(), "ModuleTooLarge");
            assert_eq!(
                error.to_string(),
                "the module is larger than 4096 bytes uncompressed; make it smaller"
            );
        }
        assert_eq!(
            decode_capped(module, limit).unwrap_err().reason(),
            "ModuleTooLarge",
            "a raw module is capped too"
        );
    }

    #[test]
    fn a_module_exactly_at_the_cap_is_accepted() {
        let module = component(4096);
        let stored = zstd::encode_all(&module[..], 3).unwrap();
        assert_eq!(decode_capped(stored, 4096).unwrap(), module);
    }
}
