//! Unit newtypes used across the engine: object ids, chunk ids, block
//! indices, log addresses and byte sizes, so that bare integers of different
//! meaning cannot be mixed up.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Size of one internal block: the unit of mapping and of copy-on-write.
pub const BLOCK_SIZE: u64 = 4096;

/// Largest volume size accepted: 256 TiB (a map of depth 5 covers more).
pub const MAX_VOLUME_SIZE: u64 = 256 << 40;

/// The id of a volume, snapshot or image: a UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectId(pub uuid::Uuid);

impl ObjectId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        ObjectId(uuid::Uuid::new_v4())
    }
    /// The 16 raw bytes, as stored in log records.
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }
    /// From 16 raw bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        ObjectId(uuid::Uuid::from_bytes(b))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ObjectId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(ObjectId)
    }
}

/// The id of a stored chunk (a data block or a map node) in the chunk table.
///
/// `0` is a hole, `1` a zero extent; data chunks have ids from 2 up to
/// [`NODE_ID_BASE`] and map nodes ids from [`NODE_ID_BASE`] on, drawn from
/// separate counters, so that each region of the chunk table fills its
/// leaves densely.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct ChunkId(pub u64);

impl ChunkId {
    /// An unmapped range: reads as zero, stores nothing.
    pub const HOLE: ChunkId = ChunkId(0);
    /// An explicitly zeroed range: reads as zero, stores nothing.
    pub const ZERO: ChunkId = ChunkId(1);
    /// True for the two special values that name no stored chunk.
    pub fn is_special(self) -> bool {
        self.0 < 2
    }
    /// True for a map node id.
    pub fn is_node(self) -> bool {
        self.0 >= NODE_ID_BASE
    }
    /// True for a data chunk id.
    pub fn is_data(self) -> bool {
        (2..NODE_ID_BASE).contains(&self.0)
    }
    /// The `n`th data chunk id.
    pub fn data(n: u64) -> Self {
        ChunkId(2 + n)
    }
    /// `n` for the `n`th data chunk id (this one must be a data id).
    pub fn data_index(self) -> u64 {
        self.0 - 2
    }
    /// The `n`th node id.
    pub fn node(n: u64) -> Self {
        ChunkId(NODE_ID_BASE + n)
    }
    /// Index of this id in the chunk table.
    pub fn table_index(self) -> u64 {
        self.0
    }
}

/// The first map node id (2⁵⁷): data ids lie below it, node ids from it on.
pub const NODE_ID_BASE: u64 = 1 << 57;

/// The index of a 4 KiB block within a volume.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BlockIndex(pub u64);

/// A position in the log: segment number in the high 32 bits and byte offset
/// in the low 32. Segment numbers start at 1, so `LogAddr(0)` means "none".
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
pub struct LogAddr(pub u64);

impl LogAddr {
    /// No address.
    pub const NONE: LogAddr = LogAddr(0);
    /// From a segment number and offset.
    pub fn new(seg: SegmentNo, offset: u64) -> Self {
        debug_assert!(offset < (1 << 32));
        LogAddr((u64::from(seg.0) << 32) | offset)
    }
    /// The segment this address lies in.
    pub fn segment(self) -> SegmentNo {
        SegmentNo((self.0 >> 32) as u32)
    }
    /// The byte offset within the segment.
    pub fn offset(self) -> u64 {
        self.0 & 0xffff_ffff
    }
    /// True when this is [`LogAddr::NONE`].
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// The number of a segment file (`seg-NNNNNNNN.log`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct SegmentNo(pub u32);

/// A size or length in bytes, parsed from forms like `10G`, `512M`, `4096`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!(
                "invalid size '{s}': expected a number like 10G, 512M or 4096"
            ));
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid size '{s}': number too large"))?;
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            "P" | "PB" | "PIB" => 50,
            _ => {
                return Err(format!(
                    "invalid size '{s}': unknown unit '{unit}' (use K, M, G, T)"
                ))
            }
        };
        n.checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size '{s}': too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")];
        for (shift, u) in units {
            let unit = 1u64 << shift;
            if self.0 >= unit {
                if self.0.is_multiple_of(unit) {
                    return write!(f, "{}{u}", self.0 / unit);
                }
                return write!(f, "{:.1}{u}", self.0 as f64 / unit as f64);
            }
        }
        write!(f, "{}B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!("10G".parse::<ByteSize>().unwrap().0, 10 << 30);
        assert_eq!("512M".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        assert_eq!("1t".parse::<ByteSize>().unwrap().0, 1 << 40);
        assert!("banana".parse::<ByteSize>().is_err());
        assert!("10X".parse::<ByteSize>().is_err());
        assert!("99999999999999999999".parse::<ByteSize>().is_err());
        assert!("100000P".parse::<ByteSize>().is_err());
    }

    #[test]
    fn chunk_id_kinds() {
        assert!(ChunkId::data(0).is_data());
        assert!(ChunkId::node(0).is_node());
        assert!(!ChunkId::HOLE.is_data() && !ChunkId::ZERO.is_node());
        // Consecutive ids in each region, the regions apart.
        assert_eq!((ChunkId::data(0).0, ChunkId::data(1).0), (2, 3));
        assert!(ChunkId::data(1).is_data() && !ChunkId::data(1).is_node());
        assert_eq!(ChunkId::node(1).0, NODE_ID_BASE + 1);
        assert!(ChunkId(NODE_ID_BASE - 1).is_data() && !ChunkId::node(5).is_data());
        let a = LogAddr::new(SegmentNo(7), 1234);
        assert_eq!(a.segment(), SegmentNo(7));
        assert_eq!(a.offset(), 1234);
    }
}
