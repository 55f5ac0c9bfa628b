//! The superblock slot: the durable root of the store, written alternately
//! to the two slots of `DIR/superblock` by each checkpoint. A slot is valid
//! only with its magic and crc; a torn or empty slot decodes as `None`, a
//! slot of a format newer than this build's as an `Unsupported` error.

use super::{
    get_u32, get_u64, put_u32, put_u64, CtChild, FORMAT_VERSION, OLDEST_FORMAT_VERSION,
    SUPER_MAGIC, SUPER_SLOT_LEN,
};
use crate::error::{Error, ErrorKind, Result};
use crate::types::LogAddr;

/// The durable root of the store, written alternately to two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Incremented by each checkpoint; the valid slot with the highest wins.
    pub generation: u64,
    /// Segment size in bytes.
    pub segment_size: u32,
    /// Root page of the chunk table, and the crc32 of its record body (the
    /// root's parent pointer, as interior pages hold their children's).
    pub ct_root: CtChild,
    /// The checkpoint blob record.
    pub blob: LogAddr,
    /// Where log replay starts.
    pub replay_start: LogAddr,
    /// Sequence number of the first record to replay.
    pub replay_seq: u64,
    /// The store's identity.
    pub store_id: [u8; 16],
    /// The format version the slot was written in (see [`FORMAT_VERSION`]);
    /// encoding always writes the current one.
    pub version: u32,
}

impl Superblock {
    /// Encodes one slot.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SUPER_SLOT_LEN];
        b[..8].copy_from_slice(&SUPER_MAGIC);
        put_u32(&mut b, 8, FORMAT_VERSION);
        put_u32(&mut b, 12, self.segment_size);
        put_u64(&mut b, 16, self.generation);
        put_u64(&mut b, 24, self.ct_root.loc.0);
        put_u64(&mut b, 32, self.blob.0);
        put_u64(&mut b, 40, self.replay_start.0);
        put_u64(&mut b, 48, self.replay_seq);
        b[56..72].copy_from_slice(&self.store_id);
        put_u32(&mut b, 72, self.ct_root.crc);
        let c = crc32fast::hash(&b[..124]);
        put_u32(&mut b, 124, c);
        b
    }

    /// Decodes one slot; `None` when the slot is empty, torn or foreign.
    pub fn decode(b: &[u8]) -> Result<Option<Superblock>> {
        if b.len() < SUPER_SLOT_LEN || b[..8] != SUPER_MAGIC {
            return Ok(None);
        }
        if crc32fast::hash(&b[..124]) != get_u32(b, 124) {
            return Ok(None);
        }
        let version = get_u32(b, 8);
        if version < OLDEST_FORMAT_VERSION {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the superblock has on-disk format version {version}; this build of blockd \
                     opens versions {OLDEST_FORMAT_VERSION} (migrating it) to {FORMAT_VERSION}: \
                     open the store once with a blockd of format version 3, which migrates it \
                     to version 3, close it, then open it with this build"
                ),
            ));
        }
        if version > FORMAT_VERSION {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the superblock has on-disk format version {version}; this build of blockd \
                     reads version {FORMAT_VERSION} (a newer blockd wrote this store: open it \
                     with that version)"
                ),
            ));
        }
        let root_crc = get_u32(b, 72);
        Ok(Some(Superblock {
            segment_size: get_u32(b, 12),
            generation: get_u64(b, 16),
            ct_root: CtChild {
                loc: LogAddr(get_u64(b, 24)),
                crc: root_crc,
            },
            blob: LogAddr(get_u64(b, 32)),
            replay_start: LogAddr(get_u64(b, 40)),
            replay_seq: get_u64(b, 48),
            store_id: b[56..72].try_into().expect("16 bytes"),
            version,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_roundtrip() {
        let s = Superblock {
            generation: 3,
            segment_size: 1 << 26,
            ct_root: CtChild {
                loc: LogAddr(1),
                crc: 0xdead_beef,
            },
            blob: LogAddr(2),
            replay_start: LogAddr(3),
            replay_seq: 4,
            store_id: [7; 16],
            version: FORMAT_VERSION,
        };
        let mut b = s.encode();
        assert_eq!(Superblock::decode(&b).unwrap(), Some(s));
        // Version 3 decodes (and is migrated by the open).
        let mut o = b.clone();
        put_u32(&mut o, 8, 3);
        let c = crc32fast::hash(&o[..124]);
        put_u32(&mut o, 124, c);
        assert_eq!(Superblock::decode(&o).unwrap().unwrap().version, 3);
        // So does version 4 (opened as it is).
        put_u32(&mut o, 8, 4);
        let c = crc32fast::hash(&o[..124]);
        put_u32(&mut o, 124, c);
        assert_eq!(Superblock::decode(&o).unwrap().unwrap().version, 4);
        // A slot of another version, older or newer, is refused with a
        // clear error naming it.
        for (v, says) in [
            (1, "format version 3"),
            (2, "close it"),
            (FORMAT_VERSION + 1, "newer"),
        ] {
            let mut o = b.clone();
            put_u32(&mut o, 8, v);
            let c = crc32fast::hash(&o[..124]);
            put_u32(&mut o, 124, c);
            let e = Superblock::decode(&o).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            let m = e.to_string();
            assert!(
                m.contains(&format!("version {v};")) && m.contains(says),
                "{m}"
            );
        }
        b[20] ^= 0xff;
        assert_eq!(Superblock::decode(&b).unwrap(), None);
    }
}
