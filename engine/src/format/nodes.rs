//! Map nodes on disk (docs/design.md, "Map nodes"): 510 slots and a
//! level, naming their own chunk id, written in whichever of three
//! encodings is smallest: *dense* (the 510 slots, a 4096-byte page),
//! *runs* (one 16-byte entry per run of consecutive ids; format version 5)
//! or *packed* (a base value and 510 offsets from it of 1 to 7 bytes each;
//! format version 7). Decoders refuse anything malformed as `Corrupt`.

use super::{
    get_u32, get_u64, put_u32, put_u64, slot_extent, CT_CAPACITY, NODE_FANOUT, PAGE_LEN,
    SLOT_EXTENT,
};
use crate::error::{Error, Result};
use crate::types::ChunkId;

const NODE_MAGIC: u32 = u32::from_le_bytes(*b"NODE");
/// A runs-encoded map node (format version 5).
const NODE_RUNS_MAGIC: u32 = u32::from_le_bytes(*b"NODR");
/// A packed map node (format version 7).
const NODE_PACKED_MAGIC: u32 = u32::from_le_bytes(*b"NODP");

/// A map node: 510 child entries, chunk ids of nodes (level > 0) or data.
/// In memory always the 510 slots; on disk *dense* (the 510 slots, a
/// 4096-byte page), *runs* (one 16-byte entry per run of slots naming
/// consecutive ids, or the same special value) or *packed* (each slot an
/// offset of [`PackWidth`] bytes from a base), whichever is smallest
/// ([`Node::encode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// 0 for leaves, whose entries are data chunks; >0 for interior nodes.
    pub level: u8,
    /// Child entries; [`ChunkId::HOLE`] and [`ChunkId::ZERO`] cover a whole subtree.
    pub slots: Box<[u64; NODE_FANOUT as usize]>,
}

/// Bytes before the runs of a runs-encoded node.
pub const NODE_RUNS_HEAD: usize = 24;
/// Bytes of one run of a runs-encoded node.
pub const NODE_RUN_LEN: usize = 16;
/// The most runs a runs-encoded node holds: with more, the dense page is
/// no larger, and is written instead.
pub const NODE_MAX_RUNS: usize = (PAGE_LEN - NODE_RUNS_HEAD - 1) / NODE_RUN_LEN;
/// Bytes before the codes of a packed node (its 16-byte head and base).
pub const NODE_PACKED_HEAD: usize = 24;
/// Codes of a packed node below this are the special values: 0 a hole, 1
/// a zero; code `c` from it on is the value `base + c - 2`.
const PACKED_CODE_FIRST: u64 = 2;

/// The width of each slot's code in a packed node: 1 to 7 bytes (8 would
/// make the node larger than the dense page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackWidth(u8);

impl PackWidth {
    /// The widest code.
    pub const MAX: PackWidth = PackWidth(7);

    /// The width `w`, when it is 1 to 7.
    pub fn new(w: u8) -> Option<PackWidth> {
        (1..=Self::MAX.0).contains(&w).then_some(PackWidth(w))
    }

    /// The fewest bytes that hold `code`, when 7 do.
    fn of(code: u64) -> Option<PackWidth> {
        let bytes = (64 - code.leading_zeros()).div_ceil(8).max(1);
        PackWidth::new(bytes as u8)
    }

    /// Bytes per code.
    pub fn bytes(self) -> usize {
        usize::from(self.0)
    }

    /// The body length of a packed node of this width.
    pub fn node_len(self) -> usize {
        NODE_PACKED_HEAD + NODE_FANOUT as usize * self.bytes()
    }
}

/// One run of a runs-encoded node: `len` slots from `first` holding
/// `value, value + 1, ...` (consecutive ids), or `value` in each slot when
/// it is special (only [`ChunkId::ZERO`]: holes are the slots no run
/// covers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    first: u16,
    len: u16,
    value: u64,
}

impl Run {
    /// The value of the run's slot `k`.
    fn at(&self, k: u64) -> u64 {
        if ChunkId(self.value).is_special() {
            self.value
        } else {
            self.value.wrapping_add(k)
        }
    }
}

/// True when `v` may stand in a slot of a node at `level`: a special
/// value; in a leaf a data chunk id or the slot value of a block of an
/// extent with a data id; above, a node id (within the chunk table).
/// Packed nodes hold only such values (a packed leaf naming a node id, or
/// a packed interior node a data id, is `Corrupt`).
pub fn slot_fits_level(level: u8, v: u64) -> bool {
    if ChunkId(v).is_special() {
        true
    } else if level > 0 {
        ChunkId(v).is_node() && v < CT_CAPACITY
    } else if v & SLOT_EXTENT != 0 {
        slot_extent(v).is_data()
    } else {
        ChunkId(v).is_data()
    }
}

/// How a node is packed: its base (the smallest non-special slot value, 0
/// with none) and the width of its codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packing {
    base: u64,
    width: PackWidth,
}

impl Node {
    /// A node whose every entry is `fill`.
    pub fn filled(level: u8, fill: ChunkId) -> Self {
        Node {
            level,
            slots: Box::new([fill.0; NODE_FANOUT as usize]),
        }
    }

    /// The node's runs: maximal runs of slots holding consecutive
    /// non-special ids, or [`ChunkId::ZERO`]; holes are not covered.
    fn runs(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for (i, &v) in self.slots.iter().enumerate() {
            if v == ChunkId::HOLE.0 {
                continue;
            }
            if let Some(r) = runs.last_mut() {
                let end = u64::from(r.first) + u64::from(r.len);
                if end == i as u64 && r.at(u64::from(r.len)) == v {
                    r.len += 1;
                    continue;
                }
            }
            runs.push(Run {
                first: i as u16,
                len: 1,
                value: v,
            });
        }
        runs
    }

    /// How the node packs: `None` when one of its values does not fit its
    /// level ([`slot_fits_level`]) or its values span 2⁵⁶ − 2 or more.
    fn packing(&self) -> Option<Packing> {
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for &v in self.slots.iter() {
            if !slot_fits_level(self.level, v) {
                return None;
            }
            if !ChunkId(v).is_special() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let base = if lo == u64::MAX { 0 } else { lo };
        let top = (hi - base.min(hi)).checked_add(PACKED_CODE_FIRST)?;
        Some(Packing {
            base,
            width: PackWidth::of(top)?,
        })
    }

    /// Encodes the node, naming its own chunk id, in whichever of runs,
    /// packed and dense is smallest (a sequentially written leaf is one or
    /// a few runs, one written at random packs in 3 to 5 bytes a slot).
    /// Deterministic: the same node always encodes to the same bytes (the
    /// lengths of runs, 24 + 16k, and of packed nodes, 24 + 510w, are never
    /// equal, and both are under the page's).
    pub fn encode(&self, id: ChunkId) -> Vec<u8> {
        let runs = self.runs();
        let runs_len = NODE_RUNS_HEAD + NODE_RUN_LEN * runs.len();
        match self.packing() {
            Some(p) if p.width.node_len() < runs_len => self.encode_packed(id, p),
            _ if runs.len() <= NODE_MAX_RUNS => self.encode_runs(id, &runs),
            _ => self.encode_dense(id),
        }
    }

    /// The 16 bytes every encoding starts with: its magic, the level, a
    /// byte the packed encoding uses (its width; 0 in the others), 0, 0
    /// and the node's own id.
    fn head(&self, b: &mut [u8], magic: u32, byte5: u8, id: ChunkId) {
        put_u32(b, 0, magic);
        b[4] = self.level;
        b[5] = byte5;
        put_u64(b, 8, id.0);
    }

    /// Encodes the node as a dense 4096-byte page (as format version 4
    /// wrote every node).
    pub fn encode_dense(&self, id: ChunkId) -> Vec<u8> {
        let mut b = vec![0u8; PAGE_LEN];
        self.head(&mut b, NODE_MAGIC, 0, id);
        for (i, s) in self.slots.iter().enumerate() {
            put_u64(&mut b, 16 + 8 * i, *s);
        }
        b
    }

    fn encode_runs(&self, id: ChunkId, runs: &[Run]) -> Vec<u8> {
        let mut b = vec![0u8; NODE_RUNS_HEAD + NODE_RUN_LEN * runs.len()];
        self.head(&mut b, NODE_RUNS_MAGIC, 0, id);
        b[16..18].copy_from_slice(&(runs.len() as u16).to_le_bytes());
        for (k, r) in runs.iter().enumerate() {
            let o = NODE_RUNS_HEAD + NODE_RUN_LEN * k;
            b[o..o + 2].copy_from_slice(&r.first.to_le_bytes());
            b[o + 2..o + 4].copy_from_slice(&r.len.to_le_bytes());
            put_u64(&mut b, o + 8, r.value);
        }
        b
    }

    fn encode_packed(&self, id: ChunkId, p: Packing) -> Vec<u8> {
        let w = p.width.bytes();
        let mut b = vec![0u8; p.width.node_len()];
        self.head(&mut b, NODE_PACKED_MAGIC, p.width.0, id);
        put_u64(&mut b, 16, p.base);
        for (i, &v) in self.slots.iter().enumerate() {
            let code = if ChunkId(v).is_special() {
                v
            } else {
                v - p.base + PACKED_CODE_FIRST
            };
            let o = NODE_PACKED_HEAD + w * i;
            b[o..o + w].copy_from_slice(&code.to_le_bytes()[..w]);
        }
        b
    }

    /// Decodes a node record body, dense, runs or packed, checking that it
    /// names `id`.
    pub fn decode(b: &[u8], id: ChunkId) -> Result<Node> {
        let bad = |why: &str| Error::corrupt(format!("map node {} {why}", id.0));
        let magic = if b.len() >= 16 { get_u32(b, 0) } else { 0 };
        let dense = magic == NODE_MAGIC && b.len() == PAGE_LEN;
        let runs = magic == NODE_RUNS_MAGIC && b.len() >= NODE_RUNS_HEAD && b.len() < PAGE_LEN;
        let packed = magic == NODE_PACKED_MAGIC;
        if !dense && !runs && !packed {
            return Err(bad("has a bad header"));
        }
        if get_u64(b, 8) != id.0 {
            return Err(Error::corrupt(format!(
                "map node {} holds node {} (misdirected pointer)",
                id.0,
                get_u64(b, 8)
            )));
        }
        let level = b[4];
        if level > 8 {
            return Err(bad(&format!("has level {level}")));
        }
        if b[6..8] != [0, 0] || !packed && b[5] != 0 {
            return Err(bad("has a bad header"));
        }
        let mut slots = Box::new([0u64; NODE_FANOUT as usize]);
        if dense {
            for (i, s) in slots.iter_mut().enumerate() {
                *s = get_u64(b, 16 + 8 * i);
            }
            return Ok(Node { level, slots });
        }
        if packed {
            Self::decode_packed(b, level, &mut slots).map_err(|why| bad(&why))?;
            return Ok(Node { level, slots });
        }
        let n = usize::from(u16::from_le_bytes([b[16], b[17]]));
        if b[18..24].iter().any(|&x| x != 0) || b.len() != NODE_RUNS_HEAD + NODE_RUN_LEN * n {
            return Err(bad(&format!(
                "has a bad runs header ({n} runs in {} bytes)",
                b.len()
            )));
        }
        let mut end = 0u64;
        for k in 0..n {
            let o = NODE_RUNS_HEAD + NODE_RUN_LEN * k;
            let r = Run {
                first: u16::from_le_bytes([b[o], b[o + 1]]),
                len: u16::from_le_bytes([b[o + 2], b[o + 3]]),
                value: get_u64(b, o + 8),
            };
            let (first, len) = (u64::from(r.first), u64::from(r.len));
            let ok = get_u32(b, o + 4) == 0
                && len > 0
                && first >= end
                && first + len <= NODE_FANOUT
                && r.value != ChunkId::HOLE.0
                && r.value.checked_add(len).is_some();
            if !ok {
                return Err(bad(&format!(
                    "has a malformed run {k} (slots {first}+{len}, value {})",
                    r.value
                )));
            }
            for j in 0..len {
                slots[(first + j) as usize] = r.at(j);
            }
            end = first + len;
        }
        Ok(Node { level, slots })
    }

    /// The slots of packed body `b` (its head checked by the caller, but
    /// for the width byte); the error says what is wrong.
    fn decode_packed(
        b: &[u8],
        level: u8,
        slots: &mut [u64; NODE_FANOUT as usize],
    ) -> std::result::Result<(), String> {
        let width = PackWidth::new(b[5])
            .filter(|w| w.node_len() == b.len())
            .ok_or_else(|| {
                format!(
                    "has a bad packed header (width {} in {} bytes)",
                    b[5],
                    b.len()
                )
            })?;
        let (w, base) = (width.bytes(), get_u64(b, 16));
        for (i, s) in slots.iter_mut().enumerate() {
            let o = NODE_PACKED_HEAD + w * i;
            let mut code = [0u8; 8];
            code[..w].copy_from_slice(&b[o..o + w]);
            let code = u64::from_le_bytes(code);
            *s = if code < PACKED_CODE_FIRST {
                code
            } else {
                base.checked_add(code - PACKED_CODE_FIRST)
                    .filter(|&v| !ChunkId(v).is_special() && slot_fits_level(level, v))
                    .ok_or_else(|| {
                        format!(
                            "has a bad packed slot {i} (base {base}, code {code}, level {level})"
                        )
                    })?
            };
        }
        Ok(())
    }
}

/// True when `len` is the body length of a node record: a dense page, a
/// runs encoding (its head and whole runs, smaller than a page) or a
/// packed one (its head and 510 codes of 1 to 7 bytes).
pub fn node_len_ok(len: u32) -> bool {
    let len = len as usize;
    len == PAGE_LEN
        || (NODE_RUNS_HEAD..PAGE_LEN).contains(&len)
            && (len - NODE_RUNS_HEAD).is_multiple_of(NODE_RUN_LEN)
        || (1..=PackWidth::MAX.0)
            .filter_map(PackWidth::new)
            .any(|w| w.node_len() == len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NODE_ID_BASE;

    #[test]
    fn node_self_location() {
        let mut n = Node::filled(1, ChunkId::HOLE);
        n.slots[5] = 77;
        let b = n.encode(ChunkId(9));
        assert_eq!(Node::decode(&b, ChunkId(9)).unwrap(), n);
        assert!(Node::decode(&b, ChunkId(11)).is_err());
    }

    #[test]
    fn node_garbled() {
        let b = Node::filled(0, ChunkId::HOLE).encode_dense(ChunkId(9));
        assert!(Node::decode(&b[..PAGE_LEN - 1], ChunkId(9)).is_err());
        let mut bad = b.clone();
        bad[4] = 9;
        let e = Node::decode(&bad, ChunkId(9)).unwrap_err();
        assert!(e.to_string().contains("level 9"), "{e}");
        let mut bad = b;
        bad[1] ^= 1;
        assert!(Node::decode(&bad, ChunkId(9)).is_err());
    }

    /// A node of `runs` runs of consecutive ids, of `len` slots each, from
    /// slot `gap` on, `gap` holes apart.
    fn node_of_runs(level: u8, runs: usize, len: usize, gap: usize) -> Node {
        let mut n = Node::filled(level, ChunkId::HOLE);
        let mut at = gap;
        for r in 0..runs {
            for k in 0..len {
                n.slots[at + k] = 1000 * (r as u64 + 1) + k as u64;
            }
            at += len + gap;
        }
        n
    }

    #[test]
    fn node_runs_encoding() {
        // A sequentially written leaf: one run, 40 bytes instead of 4096.
        let mut n = Node::filled(0, ChunkId::HOLE);
        for (i, s) in n.slots.iter_mut().enumerate() {
            *s = 77 + i as u64;
        }
        let b = n.encode(ChunkId(5));
        assert_eq!(b.len(), NODE_RUNS_HEAD + NODE_RUN_LEN);
        assert_eq!(&b[..4], b"NODR");
        assert_eq!(Node::decode(&b, ChunkId(5)).unwrap(), n);
        assert!(Node::decode(&b, ChunkId(6)).is_err());
        // Zero and hole runs: zeros are a constant run, holes no run.
        n.slots[10..20].fill(ChunkId::ZERO.0);
        n.slots[20..30].fill(ChunkId::HOLE.0);
        let b = n.encode(ChunkId(5));
        assert_eq!(b.len(), NODE_RUNS_HEAD + 3 * NODE_RUN_LEN);
        assert_eq!(Node::decode(&b, ChunkId(5)).unwrap(), n);
        // All holes: no runs at all.
        let h = Node::filled(2, ChunkId::HOLE);
        let b = h.encode(ChunkId(5));
        assert_eq!(b.len(), NODE_RUNS_HEAD);
        assert_eq!(Node::decode(&b, ChunkId(5)).unwrap(), h);
        // The most runs that still beat the page, then dense.
        let most = node_of_runs(1, NODE_MAX_RUNS, 1, 1);
        let b = most.encode(ChunkId(8));
        assert_eq!(b.len(), NODE_RUNS_HEAD + NODE_MAX_RUNS * NODE_RUN_LEN);
        assert!(b.len() < PAGE_LEN);
        assert_eq!(Node::decode(&b, ChunkId(8)).unwrap(), most);
        let more = node_of_runs(1, NODE_MAX_RUNS + 1, 1, 1);
        let b = more.encode(ChunkId(8));
        assert_eq!((b.len(), &b[..4]), (PAGE_LEN, &b"NODE"[..]));
        assert_eq!(Node::decode(&b, ChunkId(8)).unwrap(), more);
        // The dense page of any node still decodes (format version 4).
        assert_eq!(
            Node::decode(&n.encode_dense(ChunkId(5)), ChunkId(5)).unwrap(),
            n
        );
    }

    #[test]
    fn node_runs_garbled() {
        let n = node_of_runs(0, 3, 5, 2);
        let b = n.encode(ChunkId(9));
        assert_eq!(b.len(), NODE_RUNS_HEAD + 3 * NODE_RUN_LEN);
        let run = |k: usize| NODE_RUNS_HEAD + NODE_RUN_LEN * k;
        let garble = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut x = b.clone();
            f(&mut x);
            Node::decode(&x, ChunkId(9)).unwrap_err().to_string()
        };
        // Wrong run count for the length, a run cut short.
        assert!(garble(&|x| x[16] = 4).contains("runs header"));
        assert!(garble(&|x| x.truncate(x.len() - 1)).contains("runs header"));
        assert!(garble(&|x| x[20] = 1).contains("runs header"));
        // Overlapping, empty, out of the node, hole, overflowing, reserved.
        assert!(garble(&|x| x[run(1)] = 3).contains("malformed run 1"));
        assert!(garble(&|x| x[run(0) + 2..run(0) + 4].fill(0)).contains("malformed run 0"));
        assert!(
            garble(&|x| x[run(2)..run(2) + 2].copy_from_slice(&509u16.to_le_bytes()))
                .contains("malformed run 2")
        );
        assert!(garble(&|x| put_u64(x, run(0) + 8, 0)).contains("malformed run 0"));
        assert!(garble(&|x| put_u64(x, run(0) + 8, u64::MAX - 2)).contains("malformed run 0"));
        assert!(garble(&|x| x[run(0) + 5] = 1).contains("malformed run 0"));
        assert!(garble(&|x| x[6] = 1).contains("bad header"));
        // A runs node as long as a page, or a dense one shorter, is refused.
        let mut x = b.clone();
        x.resize(PAGE_LEN, 0);
        assert!(Node::decode(&x, ChunkId(9)).is_err());
        let mut x = n.encode_dense(ChunkId(9));
        x.truncate(PAGE_LEN - 16);
        assert!(Node::decode(&x, ChunkId(9)).is_err());
    }

    #[test]
    fn slot_regions() {
        use super::super::slot_value;
        let ext = slot_value(ChunkId(5), 31);
        for (level, v, fits) in [
            (0, 0, true),
            (3, 1, true),
            (0, 2, true),
            (0, NODE_ID_BASE - 1, true),
            (0, NODE_ID_BASE, false),
            (0, ext, true),
            (0, SLOT_EXTENT | NODE_ID_BASE << 5, false),
            (0, SLOT_EXTENT | 1 << 5, false),
            (1, NODE_ID_BASE, true),
            (1, NODE_ID_BASE - 1, false),
            (1, u64::MAX, false),
            (2, ext, true),
        ] {
            assert_eq!(
                slot_fits_level(level, v),
                fits,
                "level {level} value {v:#x}"
            );
        }
    }

    /// A leaf written at random: each slot a one-block extent, the ids
    /// scattered over a range of about 2²⁵, some holes and zeros.
    fn random_leaf(range: u64) -> Node {
        use super::super::slot_value;
        let mut n = Node::filled(0, ChunkId::HOLE);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for (i, s) in n.slots.iter_mut().enumerate() {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            *s = match i % 50 {
                7 => ChunkId::HOLE.0,
                8 => ChunkId::ZERO.0,
                _ => slot_value(ChunkId(1000 + (x >> 20) % range), 0),
            };
        }
        n
    }

    #[test]
    fn node_packed_encoding() {
        // A leaf written at random: 4 bytes a slot, 2064 instead of 4096.
        let n = random_leaf(1 << 20);
        let b = n.encode(ChunkId(NODE_ID_BASE + 3));
        assert_eq!((b.len(), &b[..4], b[5]), (2064, &b"NODP"[..], 4));
        assert_eq!(b.len(), PackWidth::new(4).unwrap().node_len());
        assert!(node_len_ok(b.len() as u32));
        assert_eq!(Node::decode(&b, ChunkId(NODE_ID_BASE + 3)).unwrap(), n);
        assert!(Node::decode(&b, ChunkId(NODE_ID_BASE + 4)).is_err());
        // Base the smallest value; holes and zeros are codes 0 and 1.
        let lo = *n.slots.iter().filter(|&&v| v > 1).min().unwrap();
        assert_eq!(get_u64(&b, 16), lo);
        assert_eq!(&b[24 + 4 * 7..24 + 4 * 9], &[0, 0, 0, 0, 1, 0, 0, 0]);
        // Past 2³² of range, 5 bytes a slot.
        let n = random_leaf(1 << 30);
        assert_eq!(n.encode(ChunkId(9)).len(), 24 + 5 * 510);
        // An interior node naming nodes allocated over time.
        let mut n = Node::filled(1, ChunkId::HOLE);
        for (i, s) in n.slots.iter_mut().enumerate().take(400) {
            *s = NODE_ID_BASE + 5000 + (i as u64 * 7919) % 600_000;
        }
        let b = n.encode(ChunkId(NODE_ID_BASE + 70_000));
        assert_eq!((b.len(), b[5]), (24 + 3 * 510, 3));
        assert_eq!(Node::decode(&b, ChunkId(NODE_ID_BASE + 70_000)).unwrap(), n);
        // Each width's widest span, and one more (7 bytes: dense).
        for w in 1..=7u32 {
            let mut n = Node::filled(0, ChunkId::HOLE);
            for (i, s) in n.slots.iter_mut().enumerate() {
                *s = 10 + (i as u64 % 2) * 3;
            }
            let top = (1u64 << (8 * w)) - 1; // the widest code
            n.slots[509] = 10 + top - 2;
            let b = n.encode(ChunkId(4));
            assert_eq!(
                (b.len(), b[5]),
                (24 + 510 * w as usize, w as u8),
                "width {w}"
            );
            assert_eq!(Node::decode(&b, ChunkId(4)).unwrap(), n);
            n.slots[509] += 1;
            let b = n.encode(ChunkId(4));
            let len = if w < 7 {
                24 + 510 * (w as usize + 1)
            } else {
                PAGE_LEN
            };
            assert_eq!(b.len(), len, "width {w} + 1");
            assert_eq!(Node::decode(&b, ChunkId(4)).unwrap(), n);
        }
        // A node whose values do not fit its level is never packed.
        let mut n = random_leaf(1 << 10);
        n.slots[3] = NODE_ID_BASE;
        assert_eq!(n.encode(ChunkId(4)).len(), PAGE_LEN);
    }

    #[test]
    fn node_packed_garbled() {
        let n = random_leaf(1 << 10);
        let b = n.encode(ChunkId(9));
        assert_eq!((b.len(), b[5]), (24 + 2 * 510, 2));
        let garble = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut x = b.clone();
            f(&mut x);
            Node::decode(&x, ChunkId(9)).unwrap_err().to_string()
        };
        // Widths out of 1..7, or not the one the length says.
        for w in [0u8, 3, 8, 255] {
            assert!(garble(&|x| x[5] = w).contains("packed header"), "width {w}");
        }
        assert!(garble(&|x| x.truncate(x.len() - 1)).contains("packed header"));
        assert!(garble(&|x| x.push(0)).contains("packed header"));
        assert!(garble(&|x| x.truncate(20)).contains("packed header"));
        assert!(garble(&|x| x[6] = 1).contains("bad header"));
        assert!(garble(&|x| x[7] = 1).contains("bad header"));
        // A code past the end of u64, onto a special value, into the node
        // region, or off the data region of an extent's id.
        assert!(garble(&|x| put_u64(x, 16, u64::MAX - 1)).contains("packed slot 0"));
        assert!(garble(&|x| put_u64(x, 16, 0)).contains("packed slot"));
        assert!(garble(&|x| {
            put_u64(x, 16, NODE_ID_BASE);
            x[24..26].copy_from_slice(&[2, 0]);
        })
        .contains("packed slot 0"));
        assert!(garble(&|x| {
            put_u64(x, 16, SLOT_EXTENT | 1 << 5);
            x[24..26].copy_from_slice(&[2, 0]);
        })
        .contains("packed slot 0"));
        // A leaf of one-block chunks read as an interior node.
        let mut plain = Node::filled(0, ChunkId::HOLE);
        for (i, s) in plain.slots.iter_mut().enumerate() {
            *s = 2 + (i as u64 * 7919) % 5000;
        }
        let mut x = plain.encode(ChunkId(9));
        assert_eq!((x.len(), x[5]), (24 + 2 * 510, 2));
        assert_eq!(Node::decode(&x, ChunkId(9)).unwrap(), plain);
        x[4] = 1;
        let e = Node::decode(&x, ChunkId(9)).unwrap_err().to_string();
        assert!(e.contains("packed slot 0"), "{e}");
        // Dense and runs nodes keep byte 5 zero.
        let mut d = n.encode_dense(ChunkId(9));
        d[5] = 2;
        assert!(Node::decode(&d, ChunkId(9)).is_err());
        let mut r = node_of_runs(0, 2, 3, 1).encode(ChunkId(9));
        r[5] = 1;
        assert!(Node::decode(&r, ChunkId(9)).is_err());
        // Packed lengths are node lengths; lengths in between are not.
        for w in 1..=7 {
            let len = 24 + 510 * w;
            assert!(node_len_ok(len), "{len}");
            assert!(!node_len_ok(len + 1) && !node_len_ok(len - 1), "{len}");
        }
    }

    /// What a node's encoding must weigh, worked out afresh: the smallest
    /// of the dense page, its runs (at most 254) and, when every value fits
    /// its level, its packing (the fewest bytes holding the widest code,
    /// the largest value less the smallest plus 2).
    fn smallest_len(n: &Node) -> usize {
        let mut best = PAGE_LEN;
        let runs = n.runs().len();
        if runs <= NODE_MAX_RUNS {
            best = best.min(NODE_RUNS_HEAD + NODE_RUN_LEN * runs);
        }
        if n.slots.iter().all(|&v| slot_fits_level(n.level, v)) {
            let vals = n.slots.iter().filter(|&&v| v > 1);
            let span = match (vals.clone().min(), vals.max()) {
                (Some(lo), Some(hi)) => u128::from(hi - lo) + 2,
                _ => 2,
            };
            if let Some(w) = (1..=7usize).find(|&w| span < 1u128 << (8 * w)) {
                best = best.min(24 + 510 * w);
            }
        }
        best
    }

    proptest::proptest! {
        /// Any node, however its slots lie, encodes to whichever of dense,
        /// runs and packed is smallest and decodes back to itself; every
        /// other encoding it may take is no smaller and decodes to it too;
        /// the entry's length field holds the encoding's length.
        #[test]
        fn node_encodings_roundtrip(
            level in 0u8..3,
            extents in proptest::bool::ANY,
            origin in 2u64..1 << 40,
            spread in 0u32..62,
            pieces in proptest::collection::vec(
                (0u64..5, 1usize..40, proptest::num::u64::ANY), 0..80),
        ) {
            use super::super::{CtEntry, CtPage, CT_LEAF_ENTRIES};
            use crate::types::{LogAddr, NODE_ID_BASE};
            let org = if level > 0 {
                NODE_ID_BASE + origin
            } else if extents {
                SLOT_EXTENT | origin << 5
            } else {
                origin
            };
            let mask = (1u64 << spread) - 1;
            let mut n = Node::filled(level, ChunkId::HOLE);
            let mut at = 0usize;
            for (kind, len, r) in pieces {
                for k in 0..len as u64 {
                    if at >= NODE_FANOUT as usize {
                        break;
                    }
                    let mix = r.wrapping_add(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    n.slots[at] = match kind {
                        0 => ChunkId::HOLE.0,
                        1 => ChunkId::ZERO.0,
                        2 => org.wrapping_add((r & mask) + k),
                        3 => org.wrapping_add((r & mask) + 7 * k),
                        _ => org.wrapping_add(mix & mask),
                    };
                    at += 1;
                }
            }
            let id = ChunkId(77);
            let b = n.encode(id);
            proptest::prop_assert_eq!(b.len(), smallest_len(&n));
            proptest::prop_assert!(node_len_ok(b.len() as u32));
            proptest::prop_assert_eq!(Node::decode(&b, id).unwrap(), n.clone());
            proptest::prop_assert_eq!(&b, &n.encode(id));
            let mut others = vec![n.encode_dense(id)];
            let runs = n.runs();
            if runs.len() <= NODE_MAX_RUNS {
                others.push(n.encode_runs(id, &runs));
            }
            if let Some(p) = n.packing() {
                others.push(n.encode_packed(id, p));
            }
            for o in others {
                proptest::prop_assert!(o.len() >= b.len());
                proptest::prop_assert_eq!(Node::decode(&o, id).unwrap(), n.clone());
            }
            let mut p = CtPage::empty(0);
            let e = CtEntry { loc: LogAddr(1 << 32), refcount: 1, crc: 2, stored_len: b.len() as u32, flags: 0, nblocks: 0, gap: 0 };
            if let CtPage::Leaf(es) = &mut p {
                es[0] = e;
            }
            let leaf = NODE_ID_BASE / CT_LEAF_ENTRIES + 1;
            proptest::prop_assert_eq!(CtPage::decode(&p.encode(0, leaf), 0, leaf).unwrap(), p);
        }
    }
}
