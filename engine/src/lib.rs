//! blockd's engine: a durable copy-on-write chunk store.
//!
//! Volumes map 4 KiB blocks through copy-on-write radix trees (`map.rs`) to
//! refcounted chunks listed in a paged chunk table (`state.rs`). Data and
//! metadata changes are appended to a log of segment files (`log.rs`);
//! checkpoints (`checkpoint.rs`) write dirty metadata out of place and flip a
//! two-slot superblock; recovery (`replay.rs`) replays the log since the last
//! checkpoint. Snapshots and clones take a reference on a map root, so they
//! cost O(1). The engine knows nothing of sockets, HTTP or FUSE: front ends
//! use the [`Store`] handle.
//!
//! ```text
//!  Store (store.rs) ── read/write/zero/trim/flush, block status
//!    │   store/        open.rs lifecycle · catalog.rs catalogue ops ·
//!    │                 commit.rs checkpoint commit, superblock switch
//!    ├── map.rs        CoW radix trees, shadowing, refcounts
//!    ├── state.rs      chunk table + node cache (bounded LRU, dirty pinned)
//!    ├── checkpoint.rs out-of-place page writes, superblock flip
//!    ├── replay.rs     log replay on open (salvage.rs: damaged records)
//!    ├── clean.rs      segment cleaning (space reclaim)
//!    ├── free.rs       deferred freeing: the durable pending-free queue
//!    ├── walk.rs       the one map-tree walker (stats.rs, check.rs, scrub.rs)
//!    ├── check.rs      offline consistency check and repair; scrub.rs
//!    ├── op_stats.rs   operation counters (cache, log, checkpoint, reclaim)
//!    ├── log.rs        segment files, framed records (format/: every encoding)
//!    └── residency.rs  segments (partly) in an object store: remote reads, eviction
//! ```

mod aligned;
#[cfg(feature = "bench-util")]
mod bench_util;
mod catalog;
mod catalog_ops;
mod check;
mod checkpoint;
mod clean;
mod counters;
mod ct_bytes;
mod error;
mod fault;
mod fetch;
mod format;
mod free;
mod free_sorted;
pub mod fuzzing;
mod init;
mod io;
mod log;
mod log_direct;
mod log_queue;
mod map;
mod migrate;
mod op_stats;
mod replay;
mod residency;
mod salvage;
mod scrub;
mod state;
mod stats;
mod store;
mod thread_times;
pub mod tiering;
mod types;
mod walk;

pub use aligned::{AlignedBuf, AlignedPool};
pub use catalog::{validate_name, ObjectInfo, ObjectKind, ObjectUpdate, MAX_NAME_LEN};
pub use check::CheckReport;
pub use clean::ReclaimReport;
pub use counters::CounterHeadroom;
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use counters::CounterOverride;
pub use error::{Error, ErrorKind, Result};
pub use fault::{FaultPoint, IoOp};
pub use free::{GATHER_STEP_REFS, SWEEP_STEP_REFS};
pub use free_sorted::FREE_SORT_REFS;
pub use op_stats::{HolderHolds, OpStats, HOLD_BOUNDS_US};
pub use residency::{SegmentResidency, WHOLE};
pub use salvage::LostRecord;
pub use scrub::{ScrubError, ScrubReport};
pub use stats::{ObjectStats, StoreStats};
pub use store::{Extent, ExtentKind, Store, StoreOptions};
pub use types::{
    BlockIndex, ByteSize, ChunkId, LogAddr, ObjectId, SegmentNo, BLOCK_SIZE, MAX_VOLUME_SIZE,
};

/// Decoders exposed for fuzzing and tests: bytes in, values or errors out.
pub mod decode {
    pub use crate::format::{
        decode_extent_reloc, decode_extent_write, decode_write, encode_write, CtChild, CtPage,
        FreeStep, Node, PageKey, RecordHeader, RecordKind, RelocHead, SealBody, Superblock,
        WriteHead, ZeroBody, FORMAT_VERSION, HEADER_LEN, PAGE_LEN,
    };

    /// For a Write or extent Write record body (`kind`): its object, first
    /// block, and per block where its stored payload lies in the body
    /// (offset, length), `None` for a zero block; an error for other kinds
    /// or a body that does not decode (its block crcs are not checked).
    #[allow(clippy::type_complexity)]
    pub fn write_payloads(
        kind: RecordKind,
        body: &[u8],
    ) -> crate::Result<([u8; 16], u64, Vec<Option<(usize, usize)>>)> {
        match kind {
            RecordKind::Write => {
                let (w, _) = crate::format::decode_write_salvage(body)?;
                let at = w
                    .entries
                    .iter()
                    .zip(&w.payload_offsets)
                    .map(|(e, &o)| e.chunk.is_data().then_some((o, e.stored_len as usize)))
                    .collect();
                Ok((w.object, w.first_block, at))
            }
            RecordKind::WriteExtents | RecordKind::WriteAligned => {
                let (w, _) = crate::format::decode_extent_record(kind, body)?;
                let mut at = vec![None; w.kinds.len()];
                for x in &w.extents {
                    let n = usize::from(x.count);
                    for k in 0..n {
                        let o = x.payload_at + PAGE_LEN * k;
                        at[x.first as usize + k] = Some((o, PAGE_LEN));
                    }
                }
                Ok((w.object, w.first_block, at))
            }
            _ => Err(crate::Error::corrupt("not a write record")),
        }
    }

    /// Decodes a Catalog record body (a JSON catalogue operation), as replay does.
    pub fn catalog_record(body: &[u8]) -> crate::Result<()> {
        serde_json::from_slice::<crate::catalog::CatalogOp>(body)
            .map(drop)
            .map_err(|e| crate::Error::corrupt(format!("catalogue record: {e}")))
    }

    /// Decodes a Checkpoint record body (the JSON blob), as open does.
    pub fn checkpoint_blob(body: &[u8]) -> crate::Result<()> {
        serde_json::from_slice::<crate::checkpoint::Blob>(body)
            .map(drop)
            .map_err(|e| crate::Error::corrupt(format!("checkpoint blob: {e}")))
    }
}
