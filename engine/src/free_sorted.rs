//! The pending-free queue's sorted set: data references waiting to be
//! released, grouped by the chunk-table leaf that holds their entries.
//!
//! A randomly written volume's map names its data chunks in random id
//! order, so releasing them in map order touches chunk-table leaves all
//! over the table, and every checkpoint taken while a big snapshot is freed
//! finds the whole table dirty again (a 16 GiB delete wrote each leaf about
//! 47 times). Gather steps put the data references into this set instead;
//! sweep steps then release them leaf by leaf, in ascending order, so one
//! sweep dirties each leaf once and a checkpoint in the middle of it writes
//! only the leaves already done. `free.rs` runs the steps; this file is the
//! data structure and its blob form.
//!
//! Every bucket is kept sorted, so the set's order depends only on which
//! references it holds: a store loaded from a checkpoint blob, and the live
//! store that wrote it, take the same references in the same order.
//!
//! Its blob form (a million references are 2-3 MB of JSON, 40 ms to write)
//! is encoded outside the store lock: buckets (a byte per reference, its
//! slot in the leaf) are shared (`Arc`), so a snapshot is cheap, and the
//! checkpoint's final hold uses the encoding when the set's version has
//! not moved since.

use crate::error::{Error, Result};
use crate::format::CT_LEAF_ENTRIES;
use crate::types::ChunkId;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Data references gathered before a sweep starts (unless the queue runs
/// out first): 1 MiB in memory (a byte each), and about 3 MB in the blob of
/// a checkpoint taken meanwhile (ascending ids written as differences). A
/// 16 GiB randomly written snapshot (4.2 million references) is swept four
/// times.
pub const FREE_SORT_REFS: usize = 1 << 20;

/// Data references by chunk-table leaf (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct SortedFrees {
    /// Leaf index -> its references as slots in the leaf, ascending (a
    /// chunk queued twice is in twice): one byte per reference.
    by_leaf: BTreeMap<u64, Arc<Vec<u8>>>,
    /// References held.
    len: usize,
    /// Bumped by every change: an encoding made from a snapshot of this
    /// version is still the set's.
    version: u64,
    /// True from the first sweep step until the set is empty: gathering
    /// waits, so that one sweep passes each leaf once.
    pub sweeping: bool,
}

// A slot in a leaf fits a byte.
const _: () = assert!(CT_LEAF_ENTRIES <= 256);

/// The chunk whose entry is `slot` (a byte) of table leaf `leaf`.
fn chunk_at(leaf: u64, slot: u8) -> ChunkId {
    crate::state::chunk_at(leaf, usize::from(slot))
}

impl SortedFrees {
    /// References held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no reference waits here.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds one reference to data chunk `id`.
    pub fn push(&mut self, id: ChunkId) {
        debug_assert!(id.is_data());
        let (leaf, slot) = crate::state::leaf_slot(id);
        let slot = slot as u8;
        let bucket = Arc::make_mut(self.by_leaf.entry(leaf).or_default());
        let at = bucket.partition_point(|&c| c <= slot);
        bucket.insert(at, slot);
        self.len += 1;
        self.version += 1;
    }

    /// The reference the next sweep step takes first.
    pub fn first(&self) -> Option<ChunkId> {
        self.by_leaf
            .iter()
            .next()
            .and_then(|(&leaf, b)| b.first().map(|&slot| chunk_at(leaf, slot)))
    }

    /// Takes up to `max` references, in ascending order.
    pub fn take(&mut self, max: u32) -> Vec<ChunkId> {
        let mut out = Vec::new();
        while out.len() < max as usize {
            let Some(mut first) = self.by_leaf.first_entry() else {
                break;
            };
            let want = max as usize - out.len();
            let leaf = *first.key();
            if first.get().len() <= want {
                out.extend(first.remove().iter().map(|&s| chunk_at(leaf, s)));
            } else {
                let taken = Arc::make_mut(first.get_mut()).drain(..want);
                out.extend(taken.map(|s| chunk_at(leaf, s)));
            }
        }
        self.len -= out.len();
        self.version += 1;
        if self.len == 0 {
            self.sweeping = false;
        }
        out
    }

    /// One reference from each leaf the next `take(max)` reaches (what a
    /// sweep step's prefetch looks up).
    pub fn leaves_ahead(&self, max: u32) -> Vec<ChunkId> {
        let mut left = max as usize;
        let mut out = Vec::new();
        for (&leaf, bucket) in &self.by_leaf {
            if left == 0 {
                break;
            }
            out.push(chunk_at(leaf, bucket[0]));
            left = left.saturating_sub(bucket.len());
        }
        out
    }

    /// Every reference, ascending.
    pub fn iter(&self) -> impl Iterator<Item = ChunkId> + '_ {
        self.by_leaf
            .iter()
            .flat_map(|(&leaf, b)| b.iter().map(move |&s| chunk_at(leaf, s)))
    }

    /// The buckets as they are now (cheap: `Arc` clones), to encode
    /// without the store lock.
    pub fn snapshot(&self) -> SortedSnapshot {
        SortedSnapshot {
            version: self.version,
            buckets: self.by_leaf.iter().map(|(&l, b)| (l, b.clone())).collect(),
        }
    }

    /// The blob form (`None` when empty): `pre` if it was encoded from
    /// this very version, else encoded now.
    pub fn blob_json(&self, pre: EncodedSorted) -> Option<Box<RawValue>> {
        match pre.json {
            Some(json) if pre.version == self.version => json,
            _ => self.snapshot().encode().json.flatten(),
        }
    }

    /// The set a blob holds (see [`SortedSnapshot::encode`]); every id
    /// must be a data chunk's.
    pub fn from_blob(json: Option<&RawValue>, sweeping: bool) -> Result<SortedFrees> {
        let Some(json) = json else {
            return Ok(SortedFrees::default());
        };
        let deltas: Vec<u64> = serde_json::from_str(json.get())
            .map_err(|e| Error::corrupt(format!("checkpoint blob: sorted frees: {e}")))?;
        Self::from_deltas(&deltas, sweeping)
    }

    /// The set of ascending ids written as differences.
    fn from_deltas(deltas: &[u64], sweeping: bool) -> Result<SortedFrees> {
        let mut set = SortedFrees::default();
        let mut id = 0u64;
        for &d in deltas {
            id = id
                .checked_add(d)
                .filter(|&i| ChunkId(i).is_data())
                .ok_or_else(|| {
                    Error::corrupt(
                        "checkpoint blob: the sorted frees name a chunk that is not data",
                    )
                })?;
            // Ascending input: each push lands at its bucket's end.
            set.push(ChunkId(id));
        }
        set.sweeping = sweeping && !set.is_empty();
        Ok(set)
    }
}

/// The set's buckets at one version ([`SortedFrees::snapshot`]).
pub(crate) struct SortedSnapshot {
    version: u64,
    buckets: Vec<(u64, Arc<Vec<u8>>)>,
}

/// A snapshot's blob form, made without the store lock.
#[derive(Default)]
pub(crate) struct EncodedSorted {
    version: u64,
    /// `None` when nothing was encoded; `Some(None)` for an empty set.
    json: Option<Option<Box<RawValue>>>,
}

impl SortedSnapshot {
    /// [`SortedSnapshot::encode`], unless `prev` was encoded from this
    /// very version (a checkpoint's retries do not encode again a set no
    /// step changed).
    pub fn encode_after(self, prev: EncodedSorted) -> EncodedSorted {
        if prev.json.is_some() && prev.version == self.version {
            prev
        } else {
            self.encode()
        }
    }

    /// The references ascending, each as its difference from the one
    /// before (the first from 0), as a JSON array.
    pub fn encode(self) -> EncodedSorted {
        let json = self.buckets.iter().any(|b| !b.1.is_empty()).then(|| {
            let text =
                serde_json::to_string(&Deltas(&self.buckets)).expect("a list of integers encodes");
            RawValue::from_string(text).expect("serde_json wrote valid JSON")
        });
        EncodedSorted {
            version: self.version,
            json: Some(json),
        }
    }
}

/// Buckets serialized as their ids' differences, straight from the
/// buckets (no list of a million differences built first).
struct Deltas<'a>(&'a [(u64, Arc<Vec<u8>>)]);

impl serde::Serialize for Deltas<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        let mut prev = 0;
        let ids = self
            .0
            .iter()
            .flat_map(|(leaf, b)| b.iter().map(|&s| chunk_at(*leaf, s)));
        ser.collect_seq(ids.map(|id| {
            let d = id.0 - prev;
            prev = id.0;
            d
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_in_table_order_and_round_trips() {
        let mut s = SortedFrees::default();
        let ids = [900u64, 4, 300, 4, 260, 2, 1000, 255];
        for &i in &ids {
            s.push(ChunkId(i));
        }
        assert_eq!(s.len(), ids.len());
        assert_eq!(s.first(), Some(ChunkId(2)));
        // Leaves 0 (2, 4, 4), 1 (255, 260, 300), 3 (900, 1000).
        assert_eq!(
            s.leaves_ahead(4),
            vec![ChunkId(2), ChunkId(255)],
            "a take of 4 reaches two leaves"
        );
        let pre = s.snapshot().encode();
        let json = s.blob_json(pre).unwrap();
        assert_eq!(json.get(), "[2,2,0,251,5,40,600,100]");
        let back = SortedFrees::from_blob(Some(&json), true).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            s.iter().collect::<Vec<_>>()
        );
        assert!(back.sweeping);
        // An encoding of the same version is reused, of an older one not.
        let again = s.snapshot().encode_after(s.snapshot().encode());
        assert_eq!(s.blob_json(again).unwrap().get(), json.get());
        let stale = s.snapshot().encode();
        s.push(ChunkId(3));
        let fresh = s.snapshot().encode_after(s.snapshot().encode_after(stale));
        assert!(s.blob_json(fresh).unwrap().get().starts_with("[2,1,1,0,"));
        let stale = s.snapshot().encode();
        s.push(ChunkId(5));
        s.take(1);
        assert!(s.blob_json(stale).unwrap().get().starts_with("[3,1,0,"));
        assert_eq!(s.first(), Some(ChunkId(3)));
        s.sweeping = true;
        let got: Vec<u64> = s.take(4).into_iter().map(|c| c.0).collect();
        assert_eq!(got, vec![3, 4, 4, 5]);
        assert_eq!(s.first(), Some(ChunkId(255)));
        let rest: Vec<u64> = s.take(100).into_iter().map(|c| c.0).collect();
        assert_eq!(rest, vec![255, 260, 300, 900, 1000]);
        assert!(s.is_empty() && !s.sweeping);
    }

    #[test]
    fn blob_refuses_non_data_ids() {
        assert!(SortedFrees::from_deltas(&[0], false).is_err());
        assert!(SortedFrees::from_deltas(&[5, u64::MAX], false).is_err());
        let node = crate::types::NODE_ID_BASE;
        assert!(SortedFrees::from_deltas(&[node], false).is_err());
    }
}
