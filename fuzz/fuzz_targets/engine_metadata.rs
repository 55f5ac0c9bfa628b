//! Fuzzes the engine's metadata decoders: superblock slots, map-node pages
//! and chunk-table pages (the first bytes choose the id, level and index
//! the page is checked against). Seeds are cut from a real store.
#![no_main]

use engine::decode::{CtPage, Node, Superblock};
use engine::ChunkId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Superblock::decode(data);
    if data.len() > 9 {
        let (sel, page) = data.split_at(9);
        let id = u64::from_le_bytes(sel[..8].try_into().unwrap_or([0; 8]));
        let _ = Node::decode(page, ChunkId(id));
        let _ = CtPage::decode(page, sel[8] % 8, id);
    }
    let _ = Node::decode(data, ChunkId(1 << 63));
    let _ = CtPage::decode(data, 0, 0);
});
