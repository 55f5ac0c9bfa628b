//! Scrub: re-read every live data chunk, map node and chunk-table page from
//! disk (never from the cache) and verify its checksum and identity,
//! reporting each failure by object and offset. It walks the chunk table in
//! id order, taking the store lock only briefly per table leaf, so it can
//! run online, throttled, beside client I/O.

use crate::error::{Error, Result};
use crate::format::{block_crc, CtEntry, CtPage, Node, RecordKind, CT_FLAG_COMPRESSED};
use crate::log::Segment;
use crate::state::State;
use crate::store::Store;
use crate::types::{ChunkId, ObjectId, BLOCK_SIZE};
use crate::walk::{ct_leaves, ct_page_keys, MapVisitor, NodeAt, Walk};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One damaged item found by a scrub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubError {
    /// An object whose data or map is affected (the first found), if any.
    pub object: Option<ObjectId>,
    /// Byte offset within that object, for data chunks.
    pub offset: Option<u64>,
    /// What failed and where it lies on disk.
    pub detail: String,
}

impl std::fmt::Display for ScrubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.object, self.offset) {
            (Some(o), Some(off)) => write!(f, "object {o} offset {off}: {}", self.detail),
            (Some(o), None) => write!(f, "object {o} (map): {}", self.detail),
            _ => f.write_str(&self.detail),
        }
    }
}

/// What a scrub read and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Data chunks verified.
    pub chunks_verified: u64,
    /// Map nodes and chunk-table pages verified.
    pub pages_verified: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Checksum or identity failures.
    pub errors: Vec<ScrubError>,
}

/// Sleeps as needed to keep the read rate under a bound.
struct Throttle {
    bytes_per_sec: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    fn account(&mut self, n: u64) {
        self.bytes += n;
        if let Some(rate) = self.bytes_per_sec.filter(|&r| r > 0) {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            let el = self.start.elapsed();
            if due > el {
                std::thread::sleep(due - el);
            }
        }
    }
}

/// Verifies one data chunk or node stored at `e.loc` in `seg`.
fn verify_chunk(seg: &Segment, id: ChunkId, e: &CtEntry, seg_size: u64) -> Result<u64> {
    if id.is_node() {
        let rec = seg
            .read_record(e.loc.offset(), None, seg_size)?
            .ok_or_else(|| Error::corrupt("map node record fails its checksum"))?;
        if rec.header.kind != RecordKind::Node || crc32fast::hash(&rec.body) != e.crc {
            return Err(Error::corrupt("map node page fails its checksum"));
        }
        if rec.body.len() != e.stored_len as usize {
            return Err(Error::corrupt(format!(
                "map node record holds {} bytes, its chunk-table entry says {}",
                rec.body.len(),
                e.stored_len
            )));
        }
        Node::decode(&rec.body, id)?;
        return Ok(rec.body.len() as u64);
    }
    if e.nblocks > 0 {
        // An extent: its crc array, then its payloads, each block checked
        // against its seeded crc.
        // Located by the entry (`CtEntry::extent_block`): the payloads
        // follow the crcs, or lie at 4 KiB-aligned pages after them.
        let n = usize::from(e.nblocks);
        let mut buf = vec![0u8; e.stored_len as usize];
        let (crcs, payloads) = e.extent_block(0);
        seg.read_exact_at(&mut buf[..4 * n], crcs.offset())?;
        seg.read_exact_at(&mut buf[4 * n..], payloads.offset())?;
        for k in 0..n {
            let want = u32::from_le_bytes(buf[4 * k..4 * k + 4].try_into().expect("4 bytes"));
            let p = 4 * n + BLOCK_SIZE as usize * k;
            if block_crc(id, k as u8, &buf[p..p + BLOCK_SIZE as usize]) != want {
                return Err(Error::corrupt(format!(
                    "block {k} of extent {} fails its checksum",
                    id.0
                )));
            }
        }
        return Ok(buf.len() as u64);
    }
    let mut buf = vec![0u8; e.stored_len as usize];
    seg.read_exact_at(&mut buf, e.loc.offset())?;
    if crc32fast::hash(&buf) != e.crc {
        return Err(Error::corrupt("data chunk fails its checksum"));
    }
    if e.flags & CT_FLAG_COMPRESSED != 0 {
        let mut out = vec![0u8; BLOCK_SIZE as usize];
        match zstd::bulk::decompress_to_buffer(&buf, &mut out) {
            Ok(n) if n as u64 == BLOCK_SIZE => {}
            _ => {
                return Err(Error::corrupt(
                    "compressed chunk does not decompress to a block",
                ))
            }
        }
    }
    Ok(buf.len() as u64)
}

/// Looks for the first reference to `chunk` in one map: its entry's byte
/// offset for data, none for a node. Unreadable nodes are passed by (the
/// scrub reports them on their own).
struct Owner {
    chunk: ChunkId,
    found: Option<Option<u64>>,
}

impl MapVisitor for Owner {
    type Ctx = ();

    fn enter(&mut self, _st: &mut State, at: NodeAt, ctx: ()) -> Result<Option<()>> {
        Ok(at.id.is_node().then_some(ctx))
    }

    fn unreadable(&mut self, _at: NodeAt, _e: Error) -> Result<()> {
        Ok(())
    }

    fn entry(
        &mut self,
        _st: &mut State,
        at: NodeAt,
        _index: usize,
        s: ChunkId,
        _slot: u64,
        base: u64,
        _ctx: (),
    ) -> Result<Walk<()>> {
        if s == self.chunk {
            self.found = Some((at.level == 0).then_some(base * BLOCK_SIZE));
            return Ok(Walk::Stop);
        }
        Ok(if at.level > 0 && s.is_node() {
            Walk::Into(())
        } else {
            Walk::Next
        })
    }
}

impl Store {
    /// Reads and verifies everything live; `max_bytes_per_sec` throttles it.
    pub fn scrub(&self, max_bytes_per_sec: Option<u64>) -> Result<ScrubReport> {
        let seg_size = self.segment_size();
        let mut report = ScrubReport::default();
        let mut throttle = Throttle {
            bytes_per_sec: max_bytes_per_sec,
            start: Instant::now(),
            bytes: 0,
        };
        let leaves = self.state().ct_leaf_ranges();
        let mut bad: Vec<(Option<ChunkId>, String)> = Vec::new();
        // Chunk-table pages, every level, as stored by the last checkpoint.
        for (level, index) in ct_page_keys(leaves.clone()) {
            let found = {
                let mut st = self.state();
                match st.ct_page_ref(level, index) {
                    Ok(c) if c.loc.is_none() => None,
                    Ok(c) => Some(Ok((c, st.log.segment(c.loc.segment())))),
                    // A parent that cannot be loaded (reported again
                    // at its own level) hides its children: each is
                    // reported as unreachable.
                    Err(e) => Some(Err(e)),
                }
            };
            let (child, seg) = match found {
                None => continue,
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    bad.push((
                        None,
                        format!("chunk-table page (level {level}, index {index}): {e}"),
                    ));
                    continue;
                }
            };
            let loc = child.loc;
            let what = format!(
                "chunk-table page (level {level}, index {index}) at segment {} offset {}",
                loc.segment().0,
                loc.offset()
            );
            let ok = seg
                .ok_or_else(|| Error::corrupt("its segment is missing"))
                .and_then(|s| {
                    s.read_record(loc.offset(), None, seg_size)?
                        .ok_or_else(|| Error::corrupt("record fails its checksum"))
                })
                .and_then(|r| {
                    CtPage::decode(&r.body, level, index)?;
                    if !child.matches(&r.body) {
                        return Err(Error::corrupt(
                            "page fails the checksum its parent holds (a stale or misplaced copy)",
                        ));
                    }
                    Ok(r.body.len() as u64)
                });
            match ok {
                Ok(n) => {
                    report.pages_verified += 1;
                    report.bytes_read += n;
                    throttle.account(n);
                }
                Err(e) => bad.push((None, format!("{what}: {e}"))),
            }
        }

        // Every live chunk.
        for leaf in ct_leaves(leaves) {
            let items: Vec<(ChunkId, CtEntry, Option<Arc<Segment>>)> = {
                let mut st = self.state();
                // A leaf that cannot be loaded was reported by the page pass.
                let Ok(entries) = st.ct_leaf_entries(leaf) else {
                    continue;
                };
                entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.is_live() && !e.loc.is_none())
                    .map(|(i, e)| {
                        (
                            crate::state::chunk_at(leaf, i),
                            *e,
                            st.log.segment(e.loc.segment()),
                        )
                    })
                    .collect()
            };
            for (id, e, seg) in items {
                let r = seg
                    .ok_or_else(|| Error::corrupt("its segment is missing"))
                    .and_then(|s| verify_chunk(&s, id, &e, seg_size));
                match r {
                    Ok(n) => {
                        if id.is_node() {
                            report.pages_verified += 1;
                        } else {
                            report.chunks_verified += 1;
                        }
                        report.bytes_read += n;
                        throttle.account(n);
                    }
                    Err(err) => bad.push((
                        Some(id),
                        format!(
                            "chunk {} at segment {} offset {}: {err}",
                            id.0,
                            e.loc.segment().0,
                            e.loc.offset()
                        ),
                    )),
                }
            }
        }
        // Name the objects and offsets behind the damaged chunks.
        for (chunk, detail) in bad.into_iter().take(1000) {
            let (object, offset) = match chunk {
                Some(c) => self.find_owner(c)?,
                None => (None, None),
            };
            report.errors.push(ScrubError {
                object,
                offset,
                detail,
            });
        }
        Ok(report)
    }

    /// The first object (and byte offset, for data) that references `c`.
    fn find_owner(&self, c: ChunkId) -> Result<(Option<ObjectId>, Option<u64>)> {
        let mut st = self.state();
        let roots = st.map_roots();
        for (obj, root, depth) in roots {
            if root == c {
                return Ok((Some(obj), None));
            }
            let mut owner = Owner {
                chunk: c,
                found: None,
            };
            st.walk_map(root, depth - 1, (), &mut owner)?;
            if let Some(offset) = owner.found {
                return Ok((Some(obj), offset));
            }
        }
        Ok((None, None))
    }
}
