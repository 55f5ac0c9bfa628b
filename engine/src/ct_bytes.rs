//! Clean chunk-table pages as the cache holds them: the 4096 verified bytes
//! of the page's record body, read straight into their buffer, checked
//! once against the crc the page's parent holds (and its own record
//! header's), with the head naming the page. A lookup decodes only the
//! entry or child pointer it needs ([`CtPage::leaf_entry`],
//! [`CtPage::inner_child`]), so a miss costs one read and one crc, not a
//! decode of 255 entries; and the cache's page count is its true size in
//! bytes. Dirty pages stay decoded ([`CtPage`]) until a checkpoint writes
//! them.

use crate::error::{Error, Result};
use crate::format::{CtChild, CtEntry, CtPage, RecordHeader, RecordKind, PAGE_LEN};
use crate::state::CtKey;
use crate::types::LogAddr;

/// The verified bytes of a clean chunk-table page.
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

    /// Entry `slot` of leaf `index`.
    pub fn entry(&self, index: u64, slot: usize) -> Result<CtEntry> {
        CtPage::leaf_entry(&self.0[..], index, slot)
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
