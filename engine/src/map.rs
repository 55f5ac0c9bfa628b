//! Volume maps: copy-on-write radix trees of 510-way nodes mapping 4 KiB
//! block indices to data chunks, with refcounted nodes shared between a
//! volume, its snapshots and clones (the dm-thin / Rodeh scheme).
//!
//! A snapshot takes a reference on the root; the first write below a shared
//! node shadows it (copies it and takes a reference on each child), so a
//! write after a snapshot costs one node copy per level, never a walk of the
//! volume. [`ChunkId::HOLE`] and [`ChunkId::ZERO`] may stand for a whole
//! subtree, which makes trim and write-zeroes of any range O(nodes touched).
//!
//! A leaf's slots are slot values (`format/extents.rs`): block `k` of an
//! extent, or a one-block chunk. A leaf holds *one* reference to each
//! distinct extent it names, however many of its blocks it maps: shadowing
//! a leaf increments each distinct extent once, freeing it decrements each
//! once, and a write decrements an overwritten extent only when no other
//! slot of the leaf still names it.
//!
//! Invariant: a node reachable with refcount 1 along its whole path from a
//! writable volume's root is owned by that volume alone and may be modified
//! in place; anything else is shadowed first.

use crate::error::{Error, Result};
use crate::format::{leaf_extents, slot_extent, slot_index, CtEntry, Node, NODE_FANOUT};
use crate::state::State;
use crate::types::{ChunkId, BLOCK_SIZE};
use std::sync::Arc;

/// What a range update writes into the leaves.
pub(crate) enum Fill<'a> {
    /// Per-block slot values, starting at the range's first block. They
    /// name new chunks whose entries already count one reference for each
    /// leaf they land in (`io.rs`).
    Values(&'a [u64]),
    /// One value (HOLE or ZERO) for the whole range.
    Uniform(ChunkId),
}

/// A run of blocks with one mapping: a special value covering `n` blocks, or
/// one block (`n == 1`) of a data chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub first: u64,
    pub n: u64,
    /// The special value, or the extent (or one-block chunk) the block
    /// lies in.
    pub value: ChunkId,
    /// The block's index in its extent (0 otherwise).
    pub index: u8,
    /// The leaf's slot value (the special value for a special run).
    pub slot: u64,
}

/// Blocks covered by one entry of a node at `level`.
pub(crate) fn entry_span(level: u8) -> u64 {
    NODE_FANOUT.saturating_pow(u32::from(level))
}

/// The map depth needed for a volume of `size` bytes (at least 1).
pub(crate) fn depth_for(size: u64) -> u8 {
    let blocks = size.div_ceil(BLOCK_SIZE);
    let mut d = 1u8;
    while entry_span(d) < blocks {
        d += 1;
    }
    d
}

/// The references map node `n` holds: a leaf's distinct extents, an
/// interior node's non-special children.
pub(crate) fn node_children(n: &Node) -> Vec<ChunkId> {
    if n.level == 0 {
        // A leaf holds one reference per distinct extent.
        leaf_extents(&n.slots[..])
    } else {
        n.slots
            .iter()
            .map(|&c| ChunkId(c))
            .filter(|c| !c.is_special())
            .collect()
    }
}

impl State {
    /// Adds one reference to a chunk.
    pub(crate) fn incref(&mut self, id: ChunkId) -> Result<()> {
        self.incref_many(&[id.0])
    }

    /// Drops one reference; frees the chunk (and for nodes, recursively its
    /// children) when none remain.
    pub(crate) fn decref(&mut self, id: ChunkId) -> Result<()> {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if id.is_special() {
                continue;
            }
            let children = self.release_one(id, "released")?;
            stack.extend(children);
        }
        Ok(())
    }

    /// Drops one reference to `id` (not special). When it was the last,
    /// frees the chunk and returns a node's non-special children, whose
    /// references the caller must release in turn (at once, or queued).
    /// `what` says how the chunk came to be released, for the corruption
    /// message when it is already free.
    pub(crate) fn release_one(&mut self, id: ChunkId, what: &str) -> Result<Vec<ChunkId>> {
        // One lookup: the entry as it was, its refcount dropped if other
        // references remain.
        let e = self.ct_update(id, |e| {
            let was = *e;
            if e.is_live() && e.refcount > 1 {
                e.refcount -= 1;
            }
            was
        })?;
        if !e.is_live() {
            return Err(Error::corrupt(format!(
                "chunk {} is {what} but already free",
                id.0
            )));
        }
        if e.refcount > 1 {
            return Ok(Vec::new());
        }
        // The last reference: read a node's children while its entry is
        // still live (a cold cache reads it through the entry).
        let mut children = Vec::new();
        if id.is_node() {
            children = node_children(&*self.node_get(id)?);
            self.node_forget(id);
            self.account(e.loc, e.live_bytes(id), false);
        } else {
            self.account(e.loc, u64::from(e.stored_len), false);
            self.live_data_chunks = self.live_data_chunks.saturating_sub(e.blocks());
            self.live_data_bytes = self.live_data_bytes.saturating_sub(u64::from(e.stored_len));
        }
        self.ct_set(id, CtEntry::default())?;
        Ok(children)
    }

    /// Returns an exclusively owned node for a child entry at `level`,
    /// materializing special values and shadowing shared nodes.
    fn own(&mut self, child: ChunkId, level: u8) -> Result<ChunkId> {
        if child.is_special() {
            return self.node_alloc(Node::filled(level, child));
        }
        if !child.is_node() {
            return Err(Error::corrupt(format!(
                "map entry at level {} names data chunk {}",
                level + 1,
                child.0
            )));
        }
        let e = self.ct_get(child)?;
        if e.refcount == 1 {
            return Ok(child);
        }
        let n = self.node_get(child)?;
        if n.level != level {
            return Err(Error::corrupt(format!(
                "map node {} has level {}, expected {level}",
                child.0, n.level
            )));
        }
        let copy = (*n).clone();
        if level == 0 {
            let ids: Vec<u64> = leaf_extents(&copy.slots[..]).iter().map(|c| c.0).collect();
            self.incref_many(&ids)?;
        } else {
            self.incref_many(&copy.slots[..])?;
        }
        let id = self.node_alloc(copy)?;
        self.decref(child)?;
        Ok(id)
    }

    fn node_mut(&mut self, id: ChunkId) -> Result<&mut Node> {
        if !self.nodes_dirty.contains_key(&id) {
            let n = self.node_get(id)?;
            self.node_put(id, n);
        }
        let n = self.nodes_dirty.get_mut(&id).expect("just inserted");
        Ok(Arc::make_mut(n))
    }

    /// Writes `fill` over blocks `[start, end)` below the entry `slot`, which
    /// covers a node at `level` whose first block is `base`.
    pub(crate) fn map_update(
        &mut self,
        slot: &mut ChunkId,
        level: u8,
        base: u64,
        start: u64,
        end: u64,
        fill: &Fill<'_>,
    ) -> Result<()> {
        let span = entry_span(level + 1);
        if let Fill::Uniform(v) = fill {
            if start <= base && end >= base.saturating_add(span) {
                let old = std::mem::replace(slot, *v);
                return self.release(old);
            }
            if *slot == *v {
                return Ok(());
            }
        }
        let id = self.own(*slot, level)?;
        *slot = id;
        let child_span = entry_span(level);
        let lo = ((start.max(base) - base) / child_span) as usize;
        let hi = ((end.min(base.saturating_add(span)) - base).div_ceil(child_span)) as usize;
        if level == 0 {
            let mut olds = Vec::with_capacity(hi - lo);
            let n = self.node_mut(id)?;
            for i in lo..hi {
                let v = match fill {
                    Fill::Values(vs) => vs[(base + i as u64 - start) as usize],
                    Fill::Uniform(v) => v.0,
                };
                olds.push(std::mem::replace(&mut n.slots[i], v));
            }
            // The leaf drops its reference to an overwritten extent only
            // when no other slot of it still names the extent.
            let mut gone = leaf_extents(&olds);
            if gone.len() > 8 {
                let left = leaf_extents(&n.slots[..]);
                gone.retain(|c| left.binary_search(c).is_err());
            } else if !gone.is_empty() {
                gone.retain(|c| !n.slots.iter().any(|&v| slot_extent(v) == *c));
            }
            for o in gone {
                self.decref(o)?;
            }
            return Ok(());
        }
        for i in lo..hi {
            let mut child = ChunkId(self.node_get(id)?.slots[i]);
            let before = child;
            self.map_update(
                &mut child,
                level - 1,
                base + i as u64 * child_span,
                start,
                end,
                fill,
            )?;
            if child != before {
                self.node_mut(id)?.slots[i] = child.0;
            }
        }
        Ok(())
    }

    /// Collects the runs of blocks in `range` below `slot` (a node at
    /// `level` whose first block is `base`), stopping after `max_runs`.
    pub(crate) fn map_runs(
        &mut self,
        slot: ChunkId,
        level: u8,
        base: u64,
        range: std::ops::Range<u64>,
        out: &mut Vec<Run>,
        max_runs: usize,
    ) -> Result<()> {
        let (start, end) = (range.start, range.end);
        if out.len() >= max_runs {
            return Ok(());
        }
        let span = entry_span(level + 1);
        let lo_blk = start.max(base);
        let hi_blk = end.min(base.saturating_add(span));
        if slot.is_special() {
            push_run(
                out,
                Run {
                    first: lo_blk,
                    n: hi_blk - lo_blk,
                    value: slot,
                    index: 0,
                    slot: slot.0,
                },
            );
            return Ok(());
        }
        let n = self.node_get(slot)?;
        if n.level != level {
            return Err(Error::corrupt(format!(
                "map node {} has level {}, expected {level}",
                slot.0, n.level
            )));
        }
        let child_span = entry_span(level);
        let lo = ((lo_blk - base) / child_span) as usize;
        let hi = ((hi_blk - base).div_ceil(child_span)) as usize;
        for i in lo..hi {
            if out.len() >= max_runs {
                return Ok(());
            }
            let c = ChunkId(n.slots[i]);
            let cb = base + i as u64 * child_span;
            if level == 0 {
                let x = slot_extent(c.0);
                if !x.is_special() && !x.is_data() {
                    return Err(Error::corrupt(format!(
                        "map leaf {} names non-data chunk {} (slot value {:#x})",
                        slot.0, x.0, c.0
                    )));
                }
                push_run(
                    out,
                    Run {
                        first: cb,
                        n: 1,
                        value: x,
                        index: slot_index(c.0),
                        slot: c.0,
                    },
                );
            } else {
                self.map_runs(c, level - 1, cb, start..end, out, max_runs)?;
            }
        }
        Ok(())
    }
}

/// Appends a run, merging with the previous one when both are the same
/// special value.
fn push_run(out: &mut Vec<Run>, r: Run) {
    if r.n == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.value == r.value && r.value.is_special() && last.first + last.n == r.first {
            last.n += r.n;
            return;
        }
    }
    out.push(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths() {
        assert_eq!(depth_for(4096), 1);
        assert_eq!(depth_for(510 * 4096), 1);
        assert_eq!(depth_for(510 * 4096 + 1), 2);
        assert_eq!(depth_for(16 << 40), 4);
    }
}
