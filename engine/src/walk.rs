//! Walkers over the engine's two trees, for the code that inspects them
//! whole: [`State::walk_map`] visits a volume map (or any subtree of map
//! nodes) depth-first, and [`ct_page_keys`] lists every chunk-table page a
//! table of a given size may hold. `stats.rs` (space accounting),
//! `check.rs` (reference recount) and `scrub.rs` (naming the owner of a
//! damaged chunk) each keep only their own accounting, as a [`MapVisitor`].
//!
//! The read and write paths do not use these: `map.rs`'s `map_runs` and
//! `map_update` walk only the nodes a block range covers, under their own
//! rules (shadowing, early stop at `max_runs`).
//!
//! Invariants: the walk only reads (through the node cache, like any
//! reader); it visits a node's entries in slot order and its children last
//! pushed first (the order `check` reports in); a visitor decides for each
//! entry whether to descend, which is how a shared subtree already visited
//! is skipped (check's reference counts serve as its visited set).

use crate::error::{Error, Result};
use crate::format::{
    leaf_extents, slot_chunk, Node, CT_FANOUT, CT_INTERIOR_LEVELS, CT_LEAF_ENTRIES,
};
use crate::map::entry_span;
use crate::state::State;
use crate::types::{ChunkId, ObjectId};
use std::ops::Range;

/// A node the walk reaches: its chunk id, the level it should have (0 for
/// leaves, whose entries are data) and the first block it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeAt {
    /// The node's chunk id (any id: the visitor's `enter` sees it first).
    pub id: ChunkId,
    /// Its level in the tree.
    pub level: u8,
    /// The first block it covers.
    pub base: u64,
}

/// What to do after one entry of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk<C> {
    /// Visit the entry as a node one level down, with this context (only
    /// followed below level 0).
    Into(C),
    /// Go on with the next entry.
    Next,
    /// End the whole walk.
    Stop,
}

/// The accounting of one walk. `Ctx` travels down the tree with each node
/// (say, whether everything above was exclusively owned).
pub(crate) trait MapVisitor {
    /// Context handed from a node to the children it descends into.
    type Ctx: Copy;

    /// A node is reached, before it is read: returns the context for its
    /// entries, or `None` to pass it by unread.
    fn enter(&mut self, _st: &mut State, _at: NodeAt, ctx: Self::Ctx) -> Result<Option<Self::Ctx>> {
        Ok(Some(ctx))
    }

    /// The node could not be read: `Ok` goes on with the rest of the walk,
    /// an error ends it (the default).
    fn unreadable(&mut self, _at: NodeAt, e: Error) -> Result<()> {
        Err(e)
    }

    /// The node was read: `false` passes its entries by.
    fn node(&mut self, _at: NodeAt, _node: &Node) -> Result<bool> {
        Ok(true)
    }

    /// After the entries of leaf `at`: once for each distinct extent (or
    /// one-block chunk) its slots name, the references the leaf holds.
    fn leaf_extent(
        &mut self,
        _st: &mut State,
        _at: NodeAt,
        _extent: ChunkId,
        _ctx: Self::Ctx,
    ) -> Result<()> {
        Ok(())
    }

    /// Entry `index` of node `at`, which covers the blocks from `base`:
    /// `child` is a node id above level 0; in a leaf, the extent (or
    /// one-block chunk, or special value) the slot value `slot` names.
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        st: &mut State,
        at: NodeAt,
        index: usize,
        child: ChunkId,
        slot: u64,
        base: u64,
        ctx: Self::Ctx,
    ) -> Result<Walk<Self::Ctx>>;
}

impl State {
    /// Walks the subtree whose top is `root`, a node at `level`, depth-first
    /// (see the module's invariants for the order).
    pub(crate) fn walk_map<V: MapVisitor>(
        &mut self,
        root: ChunkId,
        level: u8,
        ctx: V::Ctx,
        v: &mut V,
    ) -> Result<()> {
        let top = NodeAt {
            id: root,
            level,
            base: 0,
        };
        let mut stack = vec![(top, ctx)];
        while let Some((at, ctx)) = stack.pop() {
            let Some(ctx) = v.enter(self, at, ctx)? else {
                continue;
            };
            let n = match self.node_get(at.id) {
                Ok(n) => n,
                Err(e) => {
                    v.unreadable(at, e)?;
                    continue;
                }
            };
            if !v.node(at, &n)? {
                continue;
            }
            let span = entry_span(at.level);
            for (i, &c) in n.slots.iter().enumerate() {
                let child = slot_chunk(at.level, c);
                let base = at.base.saturating_add((i as u64).saturating_mul(span));
                match v.entry(self, at, i, child, c, base, ctx)? {
                    Walk::Into(c) if at.level > 0 => {
                        let down = NodeAt {
                            id: child,
                            level: at.level - 1,
                            base,
                        };
                        stack.push((down, c));
                    }
                    Walk::Stop => return Ok(()),
                    Walk::Into(_) | Walk::Next => {}
                }
            }
            if at.level == 0 {
                for x in leaf_extents(&n.slots[..]) {
                    v.leaf_extent(self, at, x, ctx)?;
                }
            }
        }
        Ok(())
    }

    /// Every object's map, in catalogue order: (object, root, depth).
    pub(crate) fn map_roots(&self) -> Vec<(ObjectId, ChunkId, u8)> {
        self.catalog
            .objects
            .values()
            .map(|e| (e.info.id, e.root(), e.depth))
            .collect()
    }

    /// Chunk-table leaves that may hold an entry, one range per id region
    /// (data ids from 2, node ids from 2⁵⁷): enough for every id
    /// allocated so far.
    pub(crate) fn ct_leaf_ranges(&self) -> [Range<u64>; 2] {
        let leaf = |id: ChunkId| id.table_index() / CT_LEAF_ENTRIES;
        [
            0..leaf(ChunkId::data(self.next_data)) + 1,
            leaf(ChunkId::node(0))..leaf(ChunkId::node(self.next_node)) + 1,
        ]
    }
}

/// Every leaf of `ranges` (sorted and disjoint, as
/// [`State::ct_leaf_ranges`] gives them), in index order.
pub(crate) fn ct_leaves(ranges: [Range<u64>; 2]) -> impl Iterator<Item = u64> {
    ranges.into_iter().flatten()
}

/// Every page (level, index) of a chunk table whose leaves are `ranges`:
/// the leaves, then each interior level up to the root, each in index
/// order and each page once (the regions share their upper pages).
pub(crate) fn ct_page_keys(ranges: [Range<u64>; 2]) -> impl Iterator<Item = (u8, u64)> {
    (0..=CT_INTERIOR_LEVELS).flat_map(move |level| {
        let span = CT_FANOUT.pow(u32::from(level));
        let up = |r: &Range<u64>| r.start / span..(r.end - 1) / span + 1;
        let (a, b) = (up(&ranges[0]), up(&ranges[1]));
        let b = b.start.max(a.end)..b.end.max(a.end);
        a.chain(b).map(move |index| (level, index))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_cover_each_level() {
        let node0 = crate::types::NODE_ID_BASE / CT_LEAF_ENTRIES;
        let keys: Vec<(u8, u64)> = ct_page_keys([0..300, node0..node0 + 1]).collect();
        // 300 data leaves and one node leaf; at level 1, 2 pages and 1;
        // the regions part below the root (the node region starts at
        // 2⁵⁷ = 2.02 × 255⁷ ids), so two pages per level up to 6.
        assert_eq!(keys.len(), 301 + 3 + 2 * 5 + 1);
        assert_eq!(keys[0], (0, 0));
        assert_eq!(keys[299], (0, 299));
        assert_eq!(keys[300], (0, node0));
        assert_eq!(&keys[301..303], &[(1, 0), (1, 1)]);
        assert_eq!(keys[303], (1, node0 / CT_FANOUT));
        assert_eq!(keys[keys.len() - 2], (6, 2));
        assert_eq!(keys.last(), Some(&(CT_INTERIOR_LEVELS, 0)));
        // Overlapping regions at the top are listed once.
        assert_eq!(
            ct_page_keys([0..1, 1..2]).count(),
            2 + CT_INTERIOR_LEVELS as usize
        );
        assert_eq!(ct_leaves([0..2, 7..9]).collect::<Vec<_>>(), [0, 1, 7, 8]);
    }
}
