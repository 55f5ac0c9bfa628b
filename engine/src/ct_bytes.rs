//! Chunk-table pages as the engine holds them: the 4096 bytes of the
//! page's record body. A clean page (in the cache) is read straight into
//! its buffer and checked once against the crc the page's parent holds
//! (and its own record header's), with the head naming the page. A lookup
//! decodes only the entry or child pointer it needs
//! ([`CtPage::leaf_entry`], [`CtPage::inner_child`]), so a miss costs one
//! read and one crc, not a decode of 255 entries; and the cache's page
//! count is its true size in bytes.
//!
//! Dirty leaves are held the same way: a change encodes the one entry it
//! changes ([`CtBytes::set_entry`]), so dirtying a leaf decodes nothing, a
//! dirty leaf pins one page (not 8 KiB of decoded entries: the dirty limit
//! holds twice as many), and a checkpoint writes the bytes as they are.
//! Interior pages a checkpoint changes stay decoded ([`CtPage`]).

use crate::error::{Error, Result};
use crate::format::{CtChild, CtEntry, CtPage, RecordHeader, RecordKind, PAGE_LEN};
use crate::state::CtKey;
use crate::types::LogAddr;

/// The bytes of a chunk-table page: a clean one as verified, or a dirty
/// leaf as changed since.
#[derive(Clone)]
pub(crate) struct CtBytes(Box<[u8; PAGE_LEN]>);

/// What a page is called in errors.
fn what((level, index): CtKey) -> String {
    format!("chunk-table page (level {level}, index {index})")
}

impl CtBytes {
    /// A buffer to read a page into.
    pub fn buffer() -> Box<[u8; PAGE_LEN]> {
        Box::new([0u8; PAGE_LEN])
    }

    /// The bytes `body` read at `loc` with record header `hd`, if they are
    /// page `key` as its parent's `child` names it: the record a page
    /// record, its body matching both the crc in its header and the one
    /// its parent holds (one crc computed), its head naming `key`.
    pub fn verify(
        body: Box<[u8; PAGE_LEN]>,
        hd: &RecordHeader,
        key: CtKey,
        child: CtChild,
    ) -> Result<CtBytes> {
        let loc = child.loc;
        if hd.kind != RecordKind::CtPage {
            return Err(Error::corrupt(format!(
                "{} points at a {:?} record",
                what(key),
                hd.kind
            )));
        }
        let crc = crc32fast::hash(&body[..]);
        if hd.body_crc != crc || hd.crc_len as usize != PAGE_LEN {
            return Err(no_record(key, loc));
        }
        if crc != child.crc {
            return Err(Error::corrupt(format!(
                "{} at segment {} offset {} fails the checksum its parent holds \
                 (a stale or misplaced copy)",
                what(key),
                loc.segment().0,
                loc.offset()
            )));
        }
        CtPage::check_head(&body[..], key.0, key.1)?;
        Ok(CtBytes(body))
    }

    /// The bytes of `page`, page `key` (an empty page never stored, or one
    /// a checkpoint just encoded).
    pub fn of_page(page: &CtPage, key: CtKey) -> CtBytes {
        CtBytes::of_body(&page.encode(key.0, key.1))
    }

    /// A copy of `body`, a page record body just written.
    pub fn of_body(body: &[u8]) -> CtBytes {
        let mut b = CtBytes::buffer();
        b.copy_from_slice(body);
        CtBytes(b)
    }

    /// The page's buffer, for reuse.
    pub fn into_buffer(self) -> Box<[u8; PAGE_LEN]> {
        self.0
    }

    /// Entry `slot` of leaf `index`.
    pub fn entry(&self, index: u64, slot: usize) -> Result<CtEntry> {
        CtPage::leaf_entry(&self.0[..], index, slot)
    }

    /// Sets entry `slot` of leaf `index` (a dirty leaf's change).
    pub fn set_entry(&mut self, index: u64, slot: usize, e: &CtEntry) {
        CtPage::put_leaf_entry(&mut self.0[..], index, slot, e);
    }

    /// True when the page is a leaf holding no entry.
    pub fn is_empty_leaf(&self) -> bool {
        CtPage::leaf_bytes_empty(&self.0[..])
    }

    /// The page's bytes (a record body).
    pub fn bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// Child pointer `slot` of interior page `key`.
    pub fn child(&self, key: CtKey, slot: usize) -> Result<CtChild> {
        if key.0 == 0 {
            return Err(Error::corrupt("chunk-table leaf found above level 0"));
        }
        CtPage::inner_child(&self.0[..], key.0, key.1, slot)
    }

    /// The whole page decoded.
    pub fn decode(&self, key: CtKey) -> Result<CtPage> {
        CtPage::decode(&self.0[..], key.0, key.1)
    }
}

/// The error for a page whose record is not there, or damaged.
pub(crate) fn no_record(key: CtKey, loc: LogAddr) -> Error {
    Error::corrupt(format!(
        "{}: no valid record at segment {} offset {}",
        what(key),
        loc.segment().0,
        loc.offset()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{put_u32, CT_FLAG_COMPRESSED};
    use crate::types::SegmentNo;

    /// A leaf with a few live entries, its record body, header and the
    /// pointer its parent holds.
    fn leaf(index: u64) -> (CtPage, Vec<u8>, RecordHeader, CtChild) {
        let mut p = CtPage::empty(0);
        if let CtPage::Leaf(es) = &mut p {
            es[7] = CtEntry {
                loc: LogAddr::new(SegmentNo(3), 8192),
                refcount: 2,
                crc: 0xabcd,
                stored_len: 1000,
                flags: CT_FLAG_COMPRESSED,
                nblocks: 0,
                gap: 0,
            };
            es[254] = CtEntry {
                loc: LogAddr::new(SegmentNo(4), 4096),
                refcount: 1,
                crc: 9,
                stored_len: PAGE_LEN as u32,
                flags: 0,
                nblocks: 0,
                gap: 0,
            };
        }
        let body = p.encode(0, index);
        let hd = RecordHeader::decode(&RecordHeader::encode(RecordKind::CtPage, 5, &body)).unwrap();
        let child = CtChild {
            loc: LogAddr::new(SegmentNo(2), 4096),
            crc: crc32fast::hash(&body),
        };
        (p, body, hd, child)
    }

    fn boxed(body: &[u8]) -> Box<[u8; PAGE_LEN]> {
        let mut b = CtBytes::buffer();
        b.copy_from_slice(body);
        b
    }

    #[test]
    fn lookups_match_the_whole_decode() {
        let (p, body, hd, child) = leaf(11);
        let b = CtBytes::verify(boxed(&body), &hd, (0, 11), child).unwrap();
        assert_eq!(b.decode((0, 11)).unwrap(), p);
        let CtPage::Leaf(es) = &p else { unreachable!() };
        for slot in 0..es.len() {
            assert_eq!(b.entry(11, slot).unwrap(), es[slot], "slot {slot}");
        }
        // Interior pages: child pointers one by one.
        let mut inner = CtPage::empty(2);
        if let CtPage::Inner(cs) = &mut inner {
            cs[3] = child;
        }
        let body = inner.encode(2, 1);
        let hd = RecordHeader::decode(&RecordHeader::encode(RecordKind::CtPage, 6, &body)).unwrap();
        let ptr = CtChild {
            loc: child.loc,
            crc: crc32fast::hash(&body),
        };
        let b = CtBytes::verify(boxed(&body), &hd, (2, 1), ptr).unwrap();
        assert_eq!(b.child((2, 1), 3).unwrap(), child);
        assert_eq!(b.child((2, 1), 4).unwrap(), CtChild::NONE);
        assert!(b.child((0, 1), 3).is_err());
        // An empty page never stored, and a checkpoint's body.
        let e = CtBytes::of_page(&CtPage::empty(0), (0, 9));
        assert_eq!(e.entry(9, 0).unwrap(), CtEntry::default());
        assert_eq!(
            CtBytes::of_body(&p.encode(0, 11)).decode((0, 11)).unwrap(),
            p
        );
    }

    #[test]
    fn damaged_stale_or_misplaced_pages_are_refused() {
        let (_, body, hd, child) = leaf(11);
        let msg = |r: Result<CtBytes>| r.err().expect("refused").to_string();
        // A stale copy: valid record, another crc than the parent's.
        let stale = CtChild {
            crc: child.crc ^ 1,
            ..child
        };
        assert!(msg(CtBytes::verify(boxed(&body), &hd, (0, 11), stale))
            .contains("fails the checksum its parent holds"));
        // Damage the record's own crc does not cover.
        let mut bad = body.clone();
        bad[100] ^= 4;
        assert!(msg(CtBytes::verify(boxed(&bad), &hd, (0, 11), child)).contains("no valid record"));
        // A page naming another key (a misdirected pointer), resealed.
        assert!(msg(CtBytes::verify(boxed(&body), &hd, (0, 12), child)).contains("misdirected"));
        // Not a page record.
        let node = RecordHeader::decode(&RecordHeader::encode(RecordKind::Node, 5, &body)).unwrap();
        assert!(msg(CtBytes::verify(boxed(&body), &node, (0, 11), child))
            .contains("points at a Node record"));
        // An entry malformed in a page whose crcs hold (written so by a
        // bug): reported on the lookup that reads it, with the page named.
        let mut odd = body.clone();
        put_u32(&mut odd, 16 + 16 * 7 + 8, 0);
        let hd = RecordHeader::decode(&RecordHeader::encode(RecordKind::CtPage, 5, &odd)).unwrap();
        let ptr = CtChild {
            crc: crc32fast::hash(&odd),
            ..child
        };
        let b = CtBytes::verify(boxed(&odd), &hd, (0, 11), ptr).unwrap();
        let e = b.entry(11, 7).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Corrupt);
        assert!(e.to_string().contains("index 11"), "{e}");
        assert_eq!(b.entry(11, 254).unwrap().refcount, 1);
        assert!(b.decode((0, 11)).is_err());
    }
}
