//! Opening a format-version-1 store: version 1 interior chunk-table pages
//! held 510 bare child locations (four levels) and the superblock no root
//! crc. Leaf pages, map nodes, records and the checkpoint blob are the same
//! in both versions. While the log is replayed, leaves are found through the
//! version 1 interior pages; then [`State::migrate_v1`] streams every leaf's
//! location and crc, in index order, into new version 2 interior pages (one
//! page per level in memory), and the open's checkpoint commits them with a
//! version 2 superblock. Until that superblock is written the version 1 one
//! still names the old tree, whose pages are still on disk, so a crash
//! during migration leaves a store that migrates again on the next open.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::format::{
    decode_v1_inner, CtChild, CtPage, RecordKind, Superblock, CT_FANOUT, CT_INTERIOR_LEVELS,
    CT_LEAF_ENTRIES, V1_FANOUT,
};
use crate::log::Log;
use crate::state::{State, PAGE_RECORD};
use crate::types::LogAddr;

/// Interior levels of a version 1 chunk table.
const V1_LEVELS: u8 = 4;

/// The version 1 chunk table being read: its root and the last interior
/// page read at each level (leaves are visited mostly in order).
pub(crate) struct V1Table {
    root: LogAddr,
    last: Vec<Option<(u64, Box<[u64]>)>>,
}

impl V1Table {
    pub(crate) fn new(root: LogAddr) -> Self {
        V1Table {
            root,
            last: vec![None; usize::from(V1_LEVELS) + 1],
        }
    }
}

impl State {
    /// The state a superblock describes, before replay: its chunk table
    /// (a version 1 one read through [`V1Table`] until migrated), its
    /// checkpoint blob and generation. Shared by every open, salvaging and
    /// surveying ones included.
    pub(crate) fn from_superblock(log: Log, sb: &Superblock, cache_pages: usize) -> Result<State> {
        let v1 = sb.version < 2;
        let root = if v1 { CtChild::NONE } else { sb.ct_root };
        let mut state = State::new(log, Catalog::default(), root, cache_pages);
        if v1 {
            state.v1 = Some(V1Table::new(sb.ct_root.loc));
        }
        state.load_blob(sb.blob)?;
        state.generation = sb.generation;
        Ok(state)
    }

    /// Location of version 1 page (level, index).
    fn v1_loc(&mut self, level: u8, index: u64) -> Result<LogAddr> {
        let Some(t) = self.v1.as_ref() else {
            return Err(Error::corrupt("no version 1 chunk table"));
        };
        if level == V1_LEVELS {
            return Ok(if index == 0 { t.root } else { LogAddr::NONE });
        }
        let (pl, pi) = (level + 1, index / V1_FANOUT);
        let cached = matches!(&t.last[usize::from(pl)], Some((i, _)) if *i == pi);
        if !cached {
            let loc = self.v1_loc(pl, pi)?;
            let page = if loc.is_none() {
                vec![0u64; V1_FANOUT as usize].into_boxed_slice()
            } else {
                let what = || format!("version 1 chunk-table page (level {pl}, index {pi})");
                let rec = self.log.read_required(loc, &what)?;
                if rec.header.kind != RecordKind::CtPage {
                    return Err(Error::corrupt(format!("{} is not a page", what())));
                }
                decode_v1_inner(&rec.body, pl, pi)?
            };
            if let Some(t) = self.v1.as_mut() {
                t.last[usize::from(pl)] = Some((pi, page));
            }
        }
        let t = self.v1.as_ref().expect("checked above");
        let (_, page) = t.last[usize::from(pl)].as_ref().expect("just cached");
        Ok(LogAddr(page[(index % V1_FANOUT) as usize]))
    }

    /// Reads version 1 leaf `index`; returns it with its pointer.
    pub(crate) fn v1_leaf(&mut self, index: u64) -> Result<(CtPage, CtChild)> {
        let loc = self.v1_loc(0, index)?;
        if loc.is_none() {
            return Ok((CtPage::empty(0), CtChild::NONE));
        }
        let what = || format!("chunk-table page (level 0, index {index})");
        let rec = self.log.read_required(loc, &what)?;
        if rec.header.kind != RecordKind::CtPage {
            return Err(Error::corrupt(format!("{} is not a page", what())));
        }
        let page = CtPage::decode(&rec.body, 0, index)?;
        let crc = crc32fast::hash(&rec.body);
        Ok((page, CtChild { loc, crc }))
    }

    /// Builds version 2 interior pages over the version 1 leaves (which
    /// stay where they are), frees the version 1 interior pages' space, and
    /// leaves the table in version 2 form for the next checkpoint.
    pub(crate) fn migrate_v1(&mut self) -> Result<()> {
        let max_id = (2 + 2 * self.next_data).max(3 + 2 * self.next_node);
        let n_leaves = max_id / CT_LEAF_ENTRIES + 1;
        // The page being filled at each level (1 ..= CT_INTERIOR_LEVELS).
        let mut open: Vec<Option<(u64, CtPage)>> = vec![None; usize::from(CT_INTERIOR_LEVELS) + 1];
        for leaf in 0..n_leaves {
            let (_, child) = self.v1_leaf(leaf)?;
            if !child.loc.is_none() {
                self.v2_add(&mut open, 1, leaf, child)?;
            }
        }
        for level in 1..=CT_INTERIOR_LEVELS {
            if let Some((idx, page)) = open[usize::from(level)].take() {
                let child = self.v2_write(level, idx, page)?;
                self.v2_add(&mut open, level + 1, idx, child)?;
            }
        }
        // The version 1 interior pages are garbage now.
        let mut count = n_leaves.div_ceil(V1_FANOUT);
        for level in 1..=V1_LEVELS {
            for index in 0..count {
                let loc = self.v1_loc(level, index)?;
                self.account(loc, PAGE_RECORD, false);
            }
            count = count.div_ceil(V1_FANOUT);
        }
        self.v1 = None;
        Ok(())
    }

    /// Puts `child` (page `index` one level down) into its parent at
    /// `level`, writing out the parent being filled when this one differs.
    fn v2_add(
        &mut self,
        open: &mut [Option<(u64, CtPage)>],
        level: u8,
        index: u64,
        child: CtChild,
    ) -> Result<()> {
        if level > CT_INTERIOR_LEVELS {
            self.ct_root = child;
            return Ok(());
        }
        let pidx = index / CT_FANOUT;
        if let Some((cur, _)) = &open[usize::from(level)] {
            if *cur != pidx {
                let (cur, page) = open[usize::from(level)].take().expect("checked");
                let c = self.v2_write(level, cur, page)?;
                self.v2_add(open, level + 1, cur, c)?;
            }
        }
        let (_, page) =
            open[usize::from(level)].get_or_insert_with(|| (pidx, CtPage::empty(level)));
        match page {
            CtPage::Inner(cs) => cs[(index % CT_FANOUT) as usize] = child,
            CtPage::Leaf(_) => return Err(Error::corrupt("migration: leaf above level 0")),
        }
        Ok(())
    }

    fn v2_write(&mut self, level: u8, index: u64, page: CtPage) -> Result<CtChild> {
        let body = page.encode(level, index);
        let loc = self.append(RecordKind::CtPage, &body)?;
        self.account(loc, PAGE_RECORD, true);
        Ok(CtChild {
            loc,
            crc: crc32fast::hash(&body),
        })
    }
}
