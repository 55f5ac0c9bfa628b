//! The bucket layout: object keys under the store's prefix, and the
//! commit-point manifest (docs/design.md, "Object storage").
//!
//! ```text
//! PREFIX/segments/seg-00000001.log                    a sealed segment, whole
//! PREFIX/segments/seg-00000007.log.upto-000000123456  the first 123456 bytes of
//!                                                     segment 7 (active when
//!                                                     its generation committed)
//! PREFIX/generations/g-00000000000000000042.json      commit point of
//!                                                     generation 42 (Manifest)
//! ```
//!
//! Every object is written once, create-only (`If-None-Match: *`), and
//! never changed: a segment's bytes before a committed replay point never
//! change, and a commit point is written only after every segment object
//! it names is in the bucket. The newest commit point names a consistent
//! prefix of the log.

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

/// The key (relative to the prefix) of a segment object: whole, or its
/// first `len` bytes.
pub(crate) fn segment_key(no: SegmentNo, len: Option<u64>) -> String {
    match len {
        None => format!("{SEGMENTS}/seg-{:08}.log", no.0),
        Some(n) => format!("{SEGMENTS}/seg-{:08}.log.upto-{n:012}", no.0),
    }
}

/// The key (relative to the prefix) of generation `g`'s commit point; zero
/// padded so that keys sort as generations do.
pub(crate) fn generation_key(g: u64) -> String {
    format!("{GENERATIONS}/g-{g:020}.json")
}

/// The generation a commit-point key names, if it is one.
pub(crate) fn parse_generation_key(rel: &str) -> Option<u64> {
    let name = rel.strip_prefix(GENERATIONS)?.strip_prefix('/')?;
    let digits = name.strip_prefix("g-")?.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
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
}

impl Manifest {
    /// The manifest of `c`, given each segment's uploaded length and crc.
    pub(crate) fn new(c: &Committed, objects: &[(CommittedSegment, u64, u32)]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            store_id: c.store_id.clone(),
            generation: c.generation,
            superblock: base64::engine::general_purpose::STANDARD.encode(&c.superblock),
            segments: objects
                .iter()
                .map(|(s, len, crc)| ManifestSegment {
                    no: s.no.0,
                    key: segment_key(s.no, s.len),
                    len: *len,
                    crc32: *crc,
                })
                .collect(),
        }
    }

    /// Encodes it (JSON).
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    /// Decodes and checks a commit point read from `key`.
    pub(crate) fn decode(bytes: &[u8], key: &str, generation: u64) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::Bucket(format!("{key}: not a commit point: {e}")))?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::Bucket(format!(
                "{key}: commit-point format {} (this blockd reads {MANIFEST_FORMAT})",
                m.format
            )));
        }
        if m.generation != generation {
            return Err(Error::Bucket(format!(
                "{key}: names generation {}",
                m.generation
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
            let whole = segment_key(SegmentNo(s.no), None);
            if s.no <= last || !(s.key == whole || s.key.starts_with(&format!("{whole}.upto-"))) {
                return Err(Error::Bucket(format!(
                    "{key}: segment list out of order or misnamed at {}",
                    s.key
                )));
            }
            last = s.no;
        }
        Ok(m)
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
        assert_eq!(segment_key(SegmentNo(7), None), "segments/seg-00000007.log");
        assert_eq!(
            segment_key(SegmentNo(7), Some(123456)),
            "segments/seg-00000007.log.upto-000000123456"
        );
        assert!(generation_key(9) < generation_key(10));
        assert_eq!(parse_generation_key(&generation_key(42)), Some(42));
        assert_eq!(parse_generation_key("generations/g-42.json"), None);
        assert_eq!(
            parse_generation_key("segments/g-00000000000000000042.json"),
            None
        );
    }
}
