//! Helpers shared by the engine tests that work on small stores: store
//! options with 1 MiB segments, and deterministic 4 KiB block contents.
#![allow(dead_code)]

use blockd_engine::decode::{RecordHeader, RecordKind, HEADER_LEN};
use blockd_engine::StoreOptions;
use std::path::{Path, PathBuf};

/// Block size.
pub const BS: u64 = 4096;

/// A store created if absent, with 1 MiB segments (rolls come quickly).
pub fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        create: true,
        ..Default::default()
    }
}

/// Deterministic contents of block `b` under `tag` (xorshift).
pub fn block(tag: u64, b: u64) -> Vec<u8> {
    let mut x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut out = Vec::with_capacity(BS as usize);
    while out.len() < BS as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The segment files of the store in `dir`, in log order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The records of one segment file's bytes, in log order, as (offset of
/// the header, header): up to the first header that does not decode or
/// breaks the sequence chain, and through a Seal.
pub fn records(bytes: &[u8]) -> Vec<(usize, RecordHeader)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    let mut expect = None;
    while off + HEADER_LEN <= bytes.len() {
        let Some(h) = RecordHeader::decode(&bytes[off..off + HEADER_LEN]) else {
            break;
        };
        if expect.is_some_and(|e| e != h.seq) {
            break;
        }
        expect = Some(h.seq + 1);
        let (kind, end) = (h.kind, off + HEADER_LEN + h.body_len as usize);
        out.push((off, h));
        if kind == RecordKind::Seal {
            break;
        }
        off = end;
    }
    out
}
