//! Benchmark support (feature `bench-util`, never in production builds):
//! builds a *fully mapped* map for a huge volume without writing every
//! block. Every block is mapped to one shared data chunk through shared
//! nodes, with consistent refcounts, so snapshot, clone and the first writes
//! after a snapshot exercise exactly the structures a really written volume
//! has, at any logical size.

use crate::error::{Error, ErrorKind, Result};
use crate::format::{Node, NODE_FANOUT};
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
            let chunk = runs
                .first()
                .map(|r| r.value)
                .filter(|c| c.is_data())
                .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "block 0 must hold data"))?;
            let blocks = e.info.size.div_ceil(BLOCK_SIZE);
            let mut child = chunk;
            for level in 0..e.depth {
                let mut n = Node::filled(level, ChunkId::HOLE);
                let used = if level + 1 == e.depth {
                    blocks.div_ceil(entry_span(level)).min(NODE_FANOUT)
                } else {
                    NODE_FANOUT
                };
                for i in 0..used as usize {
                    n.slots[i] = child.0;
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
}
