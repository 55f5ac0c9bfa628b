//! Counters that must never wrap: data and node chunk ids (never reused,
//! and bounded by the chunk table's capacity), record sequence numbers, the
//! superblock generation and segment numbers (the high 32 bits of a
//! `LogAddr`). Each has a hard limit, where an id would fall outside the
//! table or a number would wrap, and a soft limit a margin below it. Client
//! operations (writes, zeroes, catalogue changes) that could pass a soft
//! limit are refused with [`ErrorKind::Exhausted`] before anything is
//! logged or applied; checkpoints, reclaim, check and close go on in the
//! margin, so the store stays whole and readable. `blockd stats` reports the
//! headroom left on each (docs/design.md, "Counters and their limits").

use crate::error::{Error, ErrorKind, Result};
use crate::format::CT_CAPACITY;
use crate::state::State;
use crate::types::NODE_ID_BASE;
use serde::Serialize;

/// Ids kept in reserve below the chunk table's capacity: far more than the
/// map nodes one client operation can allocate (a few per map level).
pub(crate) const ID_MARGIN: u64 = 1 << 20;
/// Data ids `n` (chunk id `2 + n`) that fit below the node region.
pub(crate) const DATA_ID_END: u64 = NODE_ID_BASE - 2;
/// Node ids `n` (chunk id `2⁵⁷ + n`) that fit in the chunk table.
pub(crate) const NODE_ID_END: u64 = CT_CAPACITY - NODE_ID_BASE;
/// Data ids handed out to client writes.
pub(crate) const DATA_ID_LIMIT: u64 = DATA_ID_END - ID_MARGIN;
/// Node ids: client operations are refused from here on.
pub(crate) const NODE_ID_LIMIT: u64 = NODE_ID_END - ID_MARGIN;
/// Record sequence numbers: client records are refused from here on (the
/// last 2^32 are left for checkpoints and reclaim).
pub(crate) const SEQ_LIMIT: u64 = u64::MAX - (1 << 32);
/// Sequence numbers no record may take (the last ones, so that `+ 1` on a
/// record and the Seal that may precede it never overflows).
pub(crate) const SEQ_END: u64 = u64::MAX - 2;
/// Superblock generations: client operations are refused from here on
/// (2^32 checkpoints left).
pub(crate) const GENERATION_LIMIT: u64 = u64::MAX - (1 << 32);
/// Segment numbers: client operations are refused once the active segment
/// reaches this (the last 4096 are left for checkpoints and reclaim).
pub(crate) const SEGMENT_LIMIT: u32 = u32::MAX - (1 << 12);

/// How much of one counter is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CounterHeadroom {
    /// `data_ids`, `node_ids`, `record_seq`, `generation` or `segment_no`.
    pub name: String,
    /// Its current value (the next id or number it gives out).
    pub value: u64,
    /// The value from which client operations are refused.
    pub limit: u64,
    /// `limit - value`: ids, records, checkpoints or segments left.
    pub remaining: u64,
}

impl CounterHeadroom {
    fn new(name: &str, value: u64, limit: u64) -> Self {
        CounterHeadroom {
            name: name.to_string(),
            value,
            limit,
            remaining: limit.saturating_sub(value),
        }
    }

    /// Share of the counter's range used, in percent.
    pub fn used_percent(&self) -> f64 {
        self.value as f64 * 100.0 / self.limit as f64
    }
}

fn refuse(what: &str, value: u64, limit: u64) -> Error {
    Error::new(
        ErrorKind::Exhausted,
        format!(
            "{what} are used up ({value} of {limit}, kept well below where they would wrap): \
             the store refuses new writes and catalogue changes but stays readable; \
             copy its volumes to a new store"
        ),
    )
}

impl State {
    /// Admits a client operation that allocates `data_ids` data chunk ids
    /// and, with `nodes`, may allocate map nodes: refused, before anything
    /// is logged, when it could take a counter past its soft limit.
    pub(crate) fn admit(&self, data_ids: u64, nodes: bool) -> Result<()> {
        if self.next_data.saturating_add(data_ids) > DATA_ID_LIMIT {
            return Err(refuse("data chunk ids", self.next_data, DATA_ID_LIMIT));
        }
        if nodes && self.next_node >= NODE_ID_LIMIT {
            return Err(refuse("map node ids", self.next_node, NODE_ID_LIMIT));
        }
        let seq = self.log.next_seq();
        if seq >= SEQ_LIMIT {
            return Err(refuse("record sequence numbers", seq, SEQ_LIMIT));
        }
        if self.generation >= GENERATION_LIMIT {
            return Err(refuse(
                "superblock generations",
                self.generation,
                GENERATION_LIMIT,
            ));
        }
        let seg = self.log.active_no().0;
        if seg >= SEGMENT_LIMIT {
            return Err(refuse(
                "segment numbers",
                u64::from(seg),
                u64::from(SEGMENT_LIMIT),
            ));
        }
        Ok(())
    }

    /// The headroom of every counter.
    pub(crate) fn headroom(&self) -> Vec<CounterHeadroom> {
        vec![
            CounterHeadroom::new("data_ids", self.next_data, DATA_ID_LIMIT),
            CounterHeadroom::new("node_ids", self.next_node, NODE_ID_LIMIT),
            CounterHeadroom::new("record_seq", self.log.next_seq(), SEQ_LIMIT),
            CounterHeadroom::new("generation", self.generation, GENERATION_LIMIT),
            CounterHeadroom::new(
                "segment_no",
                u64::from(self.log.active_no().0),
                u64::from(SEGMENT_LIMIT),
            ),
        ]
    }
}

/// Counters a test sets near their ends (see [`crate::Store::set_counters`]).
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CounterOverride {
    /// Next data id.
    pub next_data: Option<u64>,
    /// Next node id.
    pub next_node: Option<u64>,
    /// Next record sequence number.
    pub next_seq: Option<u64>,
    /// Superblock generation.
    pub generation: Option<u64>,
    /// Number the log's next segment gets (segment numbers may skip).
    pub next_segment: Option<u32>,
}

#[cfg(feature = "fault-injection")]
impl crate::Store {
    /// Tests only: moves counters forward (never back), between two
    /// checkpoints so that the store on disk stays consistent.
    #[doc(hidden)]
    pub fn set_counters(&self, c: CounterOverride) -> Result<()> {
        self.checkpoint()?;
        {
            let _c = self.checkpoint_guard();
            let mut st = self.state();
            if let Some(n) = c.next_data {
                st.next_data = st.next_data.max(n);
            }
            if let Some(n) = c.next_node {
                st.next_node = st.next_node.max(n);
            }
            if let Some(n) = c.next_seq {
                st.log.skip_seq_to(n);
            }
            if let Some(n) = c.next_segment {
                st.log.min_next_segment = n;
            }
            if let Some(g) = c.generation {
                st.generation = st.generation.max(g);
                self.skip_generation_to(g);
            }
        }
        self.checkpoint()
    }
}
