//! Benchmark support (feature `bench-util`, never in production builds):
//! builds a *fully mapped* map for a huge volume without writing every
//! block. Every block is mapped to one shared data chunk through shared
//! nodes, with consistent refcounts, so snapshot, clone and the first writes
//! after a snapshot exercise exactly the structures a really written volume
//! has, at any logical size.
//!
//! [`Store::bench_fill_random`] builds the metadata a volume *written at
//! random, 4 KiB at a time* would have, again without writing the data:
//! every block gets its own data chunk id, ids scattered over the blocks as
//! random writes scatter them (a random permutation), one distinct leaf per
//! 510 blocks and distinct interior nodes. The data itself comes from a
//! small pool of blocks really written: each id's chunk-table entry points
//! at one of the pool's payloads. Only for benchmarks (see below).

use crate::error::{Error, ErrorKind, Result};
use crate::format::{CtEntry, Node, NODE_FANOUT};
use crate::map::entry_span;
use crate::store::Store;
use crate::types::{ChunkId, ObjectId, BLOCK_SIZE};

impl Store {
    /// Maps every block of volume `id` to the data of its block 0 (which
    /// must hold data), sharing one node per level.
    pub fn bench_fill_shared(&self, id: ObjectId) -> Result<()> {
        {
            let mut st = self.state();
            let e = st.catalog.get(id)?.clone();
            let runs = st.runs(id, 0, 1, 1)?;
            let run = runs
                .first()
                .filter(|r| r.value.is_data())
                .copied()
                .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "block 0 must hold data"))?;
            let blocks = e.info.size.div_ceil(BLOCK_SIZE);
            // A leaf holds one reference to the chunk, however many of its
            // slots name it (the same slot value, block 0's).
            let mut child = run.value;
            for level in 0..e.depth {
                let mut n = Node::filled(level, ChunkId::HOLE);
                let used = if level + 1 == e.depth {
                    blocks.div_ceil(entry_span(level)).min(NODE_FANOUT)
                } else {
                    NODE_FANOUT
                };
                for i in 0..used as usize {
                    if level == 0 {
                        n.slots[i] = run.slot;
                    } else {
                        n.slots[i] = child.0;
                        st.incref(child)?;
                    }
                }
                if level == 0 {
                    st.incref(child)?;
                }
                // The node's own reference to `child` replaces the one we
                // held while building (none for the data chunk).
                if level > 0 {
                    st.decref(child)?;
                }
                child = st.node_alloc(n)?;
            }
            let old = st.catalog.get(id)?.root();
            st.catalog.get_mut(id)?.root = child.0;
            st.decref(old)?;
        }
        // Not logged: make it durable by checkpointing right away.
        self.checkpoint()
    }

    /// Maps every block of volume `id` to a chunk id of its own, the ids
    /// in a random order over the blocks (`seed`), as if the whole volume
    /// had been written with 4 KiB random writes; map leaves and interior
    /// nodes are all distinct. Blocks `[0, pool)` must hold data (written by
    /// the caller): every new id's entry points at the payload of one of
    /// them, picked at random, and the segment usage counts each id, so
    /// the pool's segments look many times fuller than they are and the
    /// cleaner never moves them (it would move only the original ids and
    /// leave the others dangling). Reads and overwrites of such a store are
    /// exactly as in a written one; a store built this way is for
    /// benchmarks only (`check` and `scrub` would flag the shared payloads).
    ///
    /// The whole chunk table and map are built dirty in memory (about
    /// 24 bytes per block, 0.4 GiB for a 64 GiB volume, once written; more
    /// in memory while it is built) and then
    /// checkpointed.
    pub fn bench_fill_random(&self, id: ObjectId, pool: u64, seed: u64) -> Result<()> {
        {
            let mut st = self.state();
            let e = st.catalog.get(id)?.clone();
            let blocks = e.info.size.div_ceil(BLOCK_SIZE);
            if pool == 0 || pool > blocks {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "the pool must be 1 to all blocks of the volume",
                ));
            }
            // The pool's payloads.
            let mut payloads = Vec::with_capacity(pool as usize);
            for r in st.runs(id, 0, pool, usize::MAX)? {
                if !r.value.is_data() {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "every pool block must hold data",
                    ));
                }
                let mut ce = st.ct_get(r.value)?;
                if ce.nblocks > 0 {
                    // A block of an extent: the one-block entries made
                    // below point at its payload, with its plain crc.
                    let (_, at) = ce.extent_block(r.index);
                    let seg = st
                        .log
                        .segment(at.segment())
                        .ok_or_else(|| Error::corrupt("a pool block lies in a missing segment"))?;
                    let mut b = vec![0u8; BLOCK_SIZE as usize];
                    seg.read_exact_at(&mut b, at.offset())?;
                    ce = CtEntry {
                        loc: at,
                        refcount: 1,
                        crc: crc32fast::hash(&b),
                        stored_len: BLOCK_SIZE as u32,
                        flags: 0,
                        nblocks: 0,
                        gap: 0,
                    };
                }
                payloads.extend((0..r.n).map(|_| ce));
            }
            let mut rng = SplitMix(seed);
            // Block b gets the data id `base + perm[b]`: neighbouring blocks
            // hold unrelated ids, as after random writes.
            let mut perm: Vec<u32> = (0..blocks as u32).collect();
            for i in (1..perm.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                perm.swap(i, j);
            }
            let base = st.next_data;
            st.next_data += blocks;
            // Chunk-table entries in id order (each leaf of the table
            // dirtied once).
            for n in 0..blocks {
                let src = payloads[(rng.next() % pool) as usize];
                let ce = CtEntry {
                    loc: src.loc,
                    refcount: 1,
                    crc: src.crc,
                    stored_len: src.stored_len,
                    flags: src.flags,
                    nblocks: 0,
                    gap: 0,
                };
                st.ct_set(ChunkId::data(base + n), ce)?;
                st.account(src.loc, u64::from(src.stored_len), true);
                st.live_data_chunks += 1;
                st.live_data_bytes += u64::from(src.stored_len);
            }
            // Leaves, then each interior level, until one node remains.
            let fan = NODE_FANOUT as usize;
            let mut level_ids: Vec<ChunkId> = Vec::with_capacity(perm.len().div_ceil(fan));
            for chunk in perm.chunks(fan) {
                let mut n = Node::filled(0, ChunkId::HOLE);
                for (i, &p) in chunk.iter().enumerate() {
                    n.slots[i] = ChunkId::data(base + u64::from(p)).0;
                }
                level_ids.push(st.node_alloc(n)?);
            }
            drop(perm);
            for level in 1..e.depth {
                let mut up = Vec::with_capacity(level_ids.len().div_ceil(fan));
                for chunk in level_ids.chunks(fan) {
                    let mut n = Node::filled(level, ChunkId::HOLE);
                    for (i, c) in chunk.iter().enumerate() {
                        n.slots[i] = c.0;
                    }
                    up.push(st.node_alloc(n)?);
                }
                level_ids = up;
            }
            if level_ids.len() != 1 {
                return Err(Error::corrupt(format!(
                    "volume {id}: {} nodes at the top of a depth-{} map",
                    level_ids.len(),
                    e.depth
                )));
            }
            let old = st.catalog.get(id)?.root();
            st.catalog.get_mut(id)?.root = level_ids[0].0;
            // Frees the pool's original ids (their payloads stay counted
            // through the new ids).
            st.decref(old)?;
        }
        // Not logged: make it durable by checkpointing right away.
        self.checkpoint()
    }
}

/// splitmix64: a small deterministic generator for the fill.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
