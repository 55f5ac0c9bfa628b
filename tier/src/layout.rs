//! The bucket layout: object keys under the store's prefix, and the
//! commit-point manifest (docs/design.md, "Object storage").
//!
//! ```text
//! PREFIX/lease/gen-0000000003                         lease 3 (lease.rs)
//! PREFIX/segments/seg-00000001.l-0000000003.log       a sealed segment, whole,
//!                                                     uploaded under lease 3
//! PREFIX/segments/seg-00000007.l-0000000003.log.upto-000000123456
//!                                                     the first 123456 bytes of
//!                                                     segment 7 (active when
//!                                                     its generation committed)
//! PREFIX/generations/l-0000000003.g-00000000000000000042.json
//!                                                     commit point of generation
//!                                                     42 under lease 3 (Manifest)
//! PREFIX/tails/l-0000000003/seg-00000007.000000123456-000000130000
//!                                                     a tail (tail.rs)
//! ```
//!
//! Keys without `l-…` (segments `seg-N.log`, commit points `g-N.json`) are
//! lease 0: written before leases existed, and still read. Every object is
//! written once, create-only (`If-None-Match: *`), and never changed: a
//! segment's bytes before a committed replay point never change, and a
//! commit point is written only after every segment object it names is in
//! the bucket. The newest commit point (by lease, then generation) names a
//! consistent prefix of the log. A new segment object carries the lease of
//! its writer in its key, so a fenced writer's objects never collide with
//! (or stand in for) the current writer's.

use crate::{Error, Result};
use base64::Engine as _;
use engine::tiering::{Committed, CommittedSegment};
use engine::SegmentNo;
use serde::{Deserialize, Serialize};

/// Folder of segment objects.
pub(crate) const SEGMENTS: &str = "segments";
/// Folder of commit points.
pub(crate) const GENERATIONS: &str = "generations";
/// This manifest format.
pub(crate) const MANIFEST_FORMAT: u32 = 1;

/// The key (relative to the prefix) of a segment object uploaded under
/// `lease`: whole, or its first `len` bytes.
pub(crate) fn segment_key(no: SegmentNo, lease: u64, len: Option<u64>) -> String {
    let l = if lease == 0 {
        String::new()
    } else {
        format!(".l-{lease:010}")
    };
    match len {
        None => format!("{SEGMENTS}/seg-{:08}{l}.log", no.0),
        Some(n) => format!("{SEGMENTS}/seg-{:08}{l}.log.upto-{n:012}", no.0),
    }
}

/// A segment object's key, parsed: (segment, lease, `Some(len)` for a
/// prefix copy).
pub(crate) fn parse_segment_key(rel: &str) -> Option<(SegmentNo, u64, Option<u64>)> {
    let name = rel.strip_prefix(SEGMENTS)?.strip_prefix('/')?;
    let rest = name.strip_prefix("seg-")?;
    let no = digits(rest.get(..8)?, 8)?;
    let rest = &rest[8..];
    let (lease, rest) = match rest.strip_prefix(".l-") {
        Some(r) => (digits(r.get(..10)?, 10)?, &r[10..]),
        None => (0, rest),
    };
    let rest = rest.strip_prefix(".log")?;
    let len = match rest {
        "" => None,
        r => Some(digits(r.strip_prefix(".upto-")?, 12)?),
    };
    Some((SegmentNo(u32::try_from(no).ok()?), lease, len))
}

/// `s` as a number if it is exactly `n` ASCII digits.
pub(crate) fn digits(s: &str, n: usize) -> Option<u64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A commit point's identity: the lease it was written under, then its
/// generation. Newer means greater in that order: a newer lease's commit
/// points supersede an older lease's whatever their generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CommitKey {
    /// The writer's lease (0: written before leases).
    pub lease: u64,
    /// The superblock generation.
    pub generation: u64,
}

impl std::fmt::Display for CommitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "generation {} (lease {})", self.generation, self.lease)
    }
}

/// The key (relative to the prefix) of commit point `k`; zero padded so
/// that keys sort as (lease, generation) do.
pub(crate) fn generation_key(k: CommitKey) -> String {
    if k.lease == 0 {
        format!("{GENERATIONS}/g-{:020}.json", k.generation)
    } else {
        format!(
            "{GENERATIONS}/l-{:010}.g-{:020}.json",
            k.lease, k.generation
        )
    }
}

/// The commit point a key names, if it is one.
pub(crate) fn parse_generation_key(rel: &str) -> Option<CommitKey> {
    let name = rel.strip_prefix(GENERATIONS)?.strip_prefix('/')?;
    let name = name.strip_suffix(".json")?;
    let (lease, rest) = match name.strip_prefix("l-") {
        Some(r) => (digits(r.get(..10)?, 10)?, r.get(10..)?.strip_prefix('.')?),
        None => (0, name),
    };
    Some(CommitKey {
        lease,
        generation: digits(rest.strip_prefix("g-")?, 20)?,
    })
}

/// One segment object a commit point names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestSegment {
    /// The segment number.
    pub no: u32,
    /// Its object's key, relative to the prefix.
    pub key: String,
    /// The object's length in bytes.
    pub len: u64,
    /// CRC-32 of the object's bytes.
    pub crc32: u32,
}

/// A commit point: everything a restore needs to open generation
/// `generation` (JSON, `generations/g-….json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Manifest format version (1).
    pub format: u32,
    /// The store's identity; a prefix holds one store's generations.
    pub store_id: String,
    /// The superblock generation this commits.
    pub generation: u64,
    /// The superblock slot, base64.
    pub superblock: String,
    /// The segments the generation needs, in log order.
    pub segments: Vec<ManifestSegment>,
    /// The lease of the writer that committed it (0: before leases).
    #[serde(default)]
    pub lease: u64,
}

impl Manifest {
    /// The manifest of `c`, given each segment's uploaded length and crc.
    pub(crate) fn new(
        c: &Committed,
        lease: u64,
        objects: &[(CommittedSegment, String, u64, u32)],
    ) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            store_id: c.store_id.clone(),
            generation: c.generation,
            superblock: base64::engine::general_purpose::STANDARD.encode(&c.superblock),
            segments: objects
                .iter()
                .map(|(s, key, len, crc)| ManifestSegment {
                    no: s.no.0,
                    key: key.clone(),
                    len: *len,
                    crc32: *crc,
                })
                .collect(),
            lease,
        }
    }

    /// Encodes it (JSON).
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    /// Decodes and checks a commit point read from `key`.
    pub(crate) fn decode(bytes: &[u8], key: &str, k: CommitKey) -> Result<Manifest> {
        let generation = k.generation;
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::Bucket(format!("{key}: not a commit point: {e}")))?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::Bucket(format!(
                "{key}: commit-point format {} (this blockd reads {MANIFEST_FORMAT})",
                m.format
            )));
        }
        if m.generation != generation || m.lease != k.lease {
            return Err(Error::Bucket(format!(
                "{key}: names generation {} of lease {}",
                m.generation, m.lease
            )));
        }
        let (g, id) = engine::tiering::slot_identity(&m.superblock()?)?;
        if g != generation || id != m.store_id {
            return Err(Error::Bucket(format!(
                "{key}: its superblock is generation {g} of store {id}"
            )));
        }
        let mut last = 0;
        for s in &m.segments {
            let named = parse_segment_key(&s.key).map(|(no, _, _)| no.0);
            if s.no <= last || named != Some(s.no) {
                return Err(Error::Bucket(format!(
                    "{key}: segment list out of order or misnamed at {}",
                    s.key
                )));
            }
            last = s.no;
        }
        Ok(m)
    }

    /// The replay point: the last segment it names, and that segment's
    /// length in the bucket when it was copied as a prefix (the active
    /// segment, `upto`); `None` when it names no segment.
    pub fn replay_point(&self) -> Option<(SegmentNo, u64)> {
        let last = self.segments.last()?;
        let (no, _, upto) = parse_segment_key(&last.key)?;
        Some((no, upto.unwrap_or(last.len)))
    }

    /// Its key.
    pub fn commit_key(&self) -> CommitKey {
        CommitKey {
            lease: self.lease,
            generation: self.generation,
        }
    }

    /// The superblock slot's bytes.
    pub(crate) fn superblock(&self) -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.superblock)
            .map_err(|e| {
                Error::Bucket(format!("commit point {}: superblock: {e}", self.generation))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_and_parse() {
        assert_eq!(
            segment_key(SegmentNo(7), 0, None),
            "segments/seg-00000007.log"
        );
        assert_eq!(
            segment_key(SegmentNo(7), 0, Some(123456)),
            "segments/seg-00000007.log.upto-000000123456"
        );
        assert_eq!(
            segment_key(SegmentNo(7), 3, Some(5)),
            "segments/seg-00000007.l-0000000003.log.upto-000000000005"
        );
        for (no, l, len) in [
            (7, 0, None),
            (7, 3, Some(5)),
            (9, 12, None),
            (1, 0, Some(0)),
        ] {
            assert_eq!(
                parse_segment_key(&segment_key(SegmentNo(no), l, len)),
                Some((SegmentNo(no), l, len))
            );
        }
        assert_eq!(parse_segment_key("segments/seg-7.log"), None);
        assert_eq!(parse_segment_key("segments/seg-00000007.log.x"), None);
        let k = |lease, generation| CommitKey { lease, generation };
        assert!(generation_key(k(0, 9)) < generation_key(k(0, 10)));
        // A newer lease sorts after every older lease's generation.
        assert!(generation_key(k(0, 99)) < generation_key(k(1, 2)));
        assert!(generation_key(k(1, 99)) < generation_key(k(2, 2)));
        assert!(k(1, 99) < k(2, 2));
        for key in [k(0, 42), k(3, 42), k(10, 0)] {
            assert_eq!(parse_generation_key(&generation_key(key)), Some(key));
        }
        assert_eq!(parse_generation_key("generations/g-42.json"), None);
        assert_eq!(
            parse_generation_key("segments/g-00000000000000000042.json"),
            None
        );
    }
}
