//! Every on-disk decoder driven by arbitrary bytes, for the cargo-fuzz
//! targets `engine_record` and `engine_metadata` and the test that replays
//! their seeds and regressions. Decoders must return errors, never panic,
//! and never allocate from a length they have not checked.

use crate::decode::{
    catalog_record, checkpoint_blob, decode_extent_reloc, decode_extent_write, decode_write,
    CtPage, FreeStep, Node, PageKey, RecordHeader, RecordKind, RelocHead, SealBody, Superblock,
    ZeroBody, HEADER_LEN,
};
use crate::ChunkId;

/// A log record: the header, then the body by its kind; and every body
/// decoder fed the bytes directly (a fuzzer rarely forges a checksum).
/// True when the bytes held a valid record.
pub fn record(data: &[u8]) -> bool {
    let mut valid = false;
    if let Some(h) = RecordHeader::decode(data) {
        let body = &data[HEADER_LEN.min(data.len())..];
        if h.body_ok(body) {
            valid = match h.kind {
                RecordKind::Write => decode_write(body).is_ok(),
                RecordKind::Catalog => catalog_record(body).is_ok(),
                RecordKind::Checkpoint => checkpoint_blob(body).is_ok(),
                RecordKind::Zero => ZeroBody::decode(body).is_ok(),
                RecordKind::Reloc => RelocHead::decode(body).is_ok(),
                RecordKind::WriteExtents | RecordKind::WriteAligned => {
                    crate::format::decode_extent_record(h.kind, body)
                        .is_ok_and(|(_, b)| b.is_empty())
                }
                RecordKind::RelocExtent => decode_extent_reloc(body).is_ok(),
                RecordKind::Seal => SealBody::decode(body).is_ok(),
                RecordKind::Free => FreeStep::decode(body).is_ok(),
                RecordKind::Node => PageKey::peek(body)
                    .and_then(|k| Node::decode(body, ChunkId(k.index)))
                    .is_ok(),
                RecordKind::CtPage => PageKey::peek(body)
                    .and_then(|k| CtPage::decode(body, k.level, k.index))
                    .is_ok(),
            };
        }
    }
    let _ = decode_write(data);
    let _ = decode_extent_write(data);
    let _ = crate::format::decode_aligned_write(data);
    let _ = decode_extent_reloc(data);
    let _ = ZeroBody::decode(data);
    let _ = RelocHead::decode(data);
    let _ = SealBody::decode(data);
    let _ = FreeStep::decode(data);
    let _ = catalog_record(data);
    let _ = checkpoint_blob(data);
    valid
}

/// A superblock slot, and a map-node and a chunk-table page (the first
/// nine bytes choose the id, level and index the page is checked against).
pub fn metadata(data: &[u8]) {
    let _ = Superblock::decode(data);
    if data.len() > 9 {
        let (sel, page) = data.split_at(9);
        let id = u64::from_le_bytes(sel[..8].try_into().unwrap_or([0; 8]));
        let _ = Node::decode(page, ChunkId(id));
        let _ = CtPage::decode(page, sel[8] % 8, id);
        let _ = crate::format::decode_v3_leaf(page, id);
    }
    let _ = PageKey::peek(data);
    let _ = Node::decode(data, ChunkId(1 << 63));
    let _ = CtPage::decode(data, 0, 0);
}
