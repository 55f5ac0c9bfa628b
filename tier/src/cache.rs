//! The local disk as a bounded cache (`serve --cache-dir-size`): when the
//! data directory's allocated bytes pass the bound, spare segment files
//! are given back, then sealed segments whose whole copy is committed in
//! the bucket are evicted, least recently read first, until it is under
//! the bound again. The active segment, segments not yet uploaded whole,
//! the superblock and the marker files are never evicted. If it is still
//! over (uploads lag), the engine is told to refuse client writes that
//! need a new segment (`NoSpace`) until a later pass gets it under: by the
//! pass after each commit in the bucket, and by the watcher's passes
//! (every 0.1 s) while uploads fail (`upload.rs`).

use crate::Result;
use engine::{SegmentNo, SegmentResidency, Store, WHOLE};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Allocated bytes of the data directory after the pass.
    pub usage: u64,
    /// Segments evicted.
    pub evicted: u64,
    /// Bytes those freed.
    pub evicted_bytes: u64,
    /// Still over the bound (client writes needing a segment are refused
    /// if the pass was told to).
    pub full: bool,
}

/// Bytes the files under `dir` occupy on disk (allocated blocks, so a
/// sparse evicted segment counts for what it really holds).
pub fn dir_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let Ok(m) = ent.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(ent.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

/// The segments to evict, in order, to bring `usage` down to `bound`:
/// sealed, holding local bytes, whole in the bucket (`uploaded`), least
/// recently read first (never-read ones oldest), lower numbers first on
/// ties.
pub fn choose(
    segs: &[SegmentResidency],
    usage: u64,
    bound: u64,
    uploaded: &dyn Fn(SegmentNo) -> bool,
) -> Vec<SegmentNo> {
    let mut cands: Vec<&SegmentResidency> = segs
        .iter()
        .filter(|s| !s.active && s.remote_below != WHOLE && s.allocated > 0 && uploaded(s.no))
        .collect();
    cands.sort_by_key(|s| (s.last_read, s.no));
    let mut over = usage.saturating_sub(bound);
    let mut out = Vec::new();
    for c in cands {
        if over == 0 {
            break;
        }
        over = over.saturating_sub(c.allocated);
        out.push(c.no);
    }
    out
}

/// One pass over `store` (in data directory `dir`) against `bound`. Still
/// over it, client writes needing a new segment are refused when `refuse`
/// says so (else they stay as they were); under it, they are allowed.
pub fn enforce(
    store: &Store,
    dir: &Path,
    bound: u64,
    uploaded: &dyn Fn(SegmentNo) -> bool,
    refuse: bool,
) -> Result<Pass> {
    let mut pass = Pass {
        usage: dir_usage(dir),
        ..Default::default()
    };
    if pass.usage > bound {
        store.release_spares()?;
        pass.usage = dir_usage(dir);
    }
    if pass.usage > bound {
        for no in choose(&store.segment_residency(), pass.usage, bound, uploaded) {
            let freed = store.evict_segment(no)?;
            pass.evicted += 1;
            pass.evicted_bytes += freed;
        }
        pass.usage = dir_usage(dir);
    }
    pass.full = pass.usage > bound;
    if refuse || !pass.full {
        store.set_cache_full(pass.full);
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(no: u32, allocated: u64, last_read: u64) -> SegmentResidency {
        SegmentResidency {
            no: SegmentNo(no),
            len: allocated,
            allocated,
            remote_below: 0,
            last_read,
            active: false,
        }
    }

    #[test]
    fn least_recently_read_uploaded_sealed_first() {
        let mut segs = vec![
            seg(1, 100, 50),
            seg(2, 100, 10),
            seg(3, 100, 0),
            seg(4, 100, 5),
            seg(5, 100, 1),
            seg(6, 100, 0),
        ];
        segs[5].active = true;
        segs[4].remote_below = WHOLE;
        let up = |n: SegmentNo| n.0 != 4;
        // 250 over: three segments, oldest reads first, 4 not uploaded,
        // 5 already evicted, 6 active.
        assert_eq!(
            choose(&segs, 1250, 1000, &up),
            vec![SegmentNo(3), SegmentNo(2), SegmentNo(1)]
        );
        assert_eq!(choose(&segs, 1000, 1000, &up), Vec::<SegmentNo>::new());
        assert_eq!(choose(&segs, 1001, 1000, &up), vec![SegmentNo(3)]);
        // More over than can be evicted: all candidates.
        assert_eq!(choose(&segs, 9000, 1000, &up).len(), 3);
    }
}
