//! Tails: the log after the newest commit point, uploaded by byte range
//! so that a `remote`-mode flush is acknowledged once the bucket holds
//! every record before it, without a checkpoint (docs/design.md, "Object
//! storage", "Durability modes").
//!
//! ```text
//! PREFIX/tails/l-0000000003/seg-00000007.000000123456-000000130000
//!     bytes [123456, 130000) of segment 7, written under lease 3
//! PREFIX/tails/l-0000000003/seg-00000007.000000130000-000001048576.sealed
//!     the rest of segment 7, sealed: the log goes on in a later segment
//! ```
//!
//! A flush asks for the log up to the end of what the engine has written
//! ([`engine::tiering::CommitObserver::flushed`]); one thread uploads, per
//! round, everything from where the bucket's copy of this lease's log ends
//! (`uploaded_to`: a tail's end, or a commit point's replay point) to the
//! highest end any waiting flush asked for, one object per segment it
//! spans, so one round serves every flush waiting. Before and after the
//! round's puts it checks the lease; a flush is acknowledged only after
//! the check that follows its round.
//!
//! Restore ([`chain`]): from the newest commit point's replay point, the
//! tails of that commit point's lease only, each starting at or before the
//! position reached and ending after it (the longest), then, after a
//! `.sealed` one, the lowest later segment with a tail from offset 0; it
//! stops at the first gap. The bytes are laid after the replay point and
//! the engine's replay applies the records they hold.

use crate::layout::{digits, Manifest};
use crate::remote::Remote;
use crate::{Error, Result};
use engine::{LogAddr, SegmentNo};
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// Folder of tails.
pub(crate) const TAILS: &str = "tails";

/// One tail object: bytes `[from, to)` of segment `no` under `lease`;
/// `sealed`: `to` is the end of the (sealed) segment's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TailKey {
    /// The writer's lease.
    pub lease: u64,
    /// The segment.
    pub no: SegmentNo,
    /// First byte.
    pub from: u64,
    /// One past the last byte.
    pub to: u64,
    /// The segment is sealed and ends at `to`.
    pub sealed: bool,
}

impl TailKey {
    /// Its key relative to the prefix.
    pub(crate) fn key(&self) -> String {
        format!(
            "{TAILS}/l-{:010}/seg-{:08}.{:012}-{:012}{}",
            self.lease,
            self.no.0,
            self.from,
            self.to,
            if self.sealed { ".sealed" } else { "" }
        )
    }

    /// Parses a key relative to the prefix.
    pub(crate) fn parse(rel: &str) -> Option<TailKey> {
        let rest = rel.strip_prefix(TAILS)?.strip_prefix("/l-")?;
        let lease = digits(rest.get(..10)?, 10)?;
        let rest = rest.get(10..)?.strip_prefix("/seg-")?;
        let no = u32::try_from(digits(rest.get(..8)?, 8)?).ok()?;
        let rest = rest.get(8..)?.strip_prefix('.')?;
        let (rest, sealed) = match rest.strip_suffix(".sealed") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (a, b) = rest.split_once('-')?;
        let (from, to) = (digits(a, 12)?, digits(b, 12)?);
        (from <= to).then_some(TailKey {
            lease,
            no: SegmentNo(no),
            from,
            to,
            sealed,
        })
    }
}

/// The restore rule (see the module docs): the tails to lay after
/// `start` (a commit point's replay point) from those of `lease`, in log
/// order, each with how many of its first bytes to skip (already below
/// the position reached).
pub fn chain(tails: &[TailKey], lease: u64, start: (SegmentNo, u64)) -> Vec<(TailKey, u64)> {
    let mine: Vec<&TailKey> = tails.iter().filter(|t| t.lease == lease).collect();
    let mut out = Vec::new();
    let (mut no, mut pos) = start;
    loop {
        // The longest tail of this segment covering the position (a
        // sealed one may be empty: it only says the segment ends here).
        let best = mine
            .iter()
            .filter(|t| t.no == no && t.from <= pos && (pos < t.to || (t.sealed && pos == t.to)))
            .max_by_key(|t| (t.to, t.sealed));
        let Some(&&t) = best else { break };
        out.push((t, pos - t.from));
        pos = t.to;
        if t.sealed {
            let next = mine
                .iter()
                .filter(|n| n.no > no && n.from == 0)
                .map(|n| n.no)
                .min();
            match next {
                Some(n) => (no, pos) = (n, 0),
                None => break,
            }
        }
    }
    out
}

/// Every tail in the bucket.
pub(crate) async fn list(remote: &Remote) -> Result<Vec<(TailKey, u64)>> {
    let v: Vec<(TailKey, u64)> = remote
        .store()
        .list(Some(&remote.folder(TAILS)))
        .map_ok(|m| {
            remote
                .rel(&m.location)
                .and_then(|r| TailKey::parse(&r))
                .map(|k| (k, m.size))
        })
        .try_filter_map(|k| async move { Ok(k) })
        .try_collect()
        .await?;
    Ok(v)
}

/// What laying a commit point's tails down wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Laid {
    /// Tail objects used.
    pub tails: usize,
    /// Bytes written after the replay point.
    pub bytes: u64,
    /// Where the laid log ends.
    pub end: (u32, u64),
}

/// Writes the tails that follow commit point `m` (by [`chain`]) into the
/// segment files of `dir` (creating those past its segments), synced;
/// call before the superblock is written.
pub(crate) async fn lay(remote: &Remote, dir: &Path, m: &Manifest) -> Result<Laid> {
    let Some(start) = m.replay_point() else {
        return Ok(Laid::default());
    };
    let all: Vec<TailKey> = list(remote).await?.into_iter().map(|(k, _)| k).collect();
    let mut laid = Laid {
        end: (start.0 .0, start.1),
        ..Default::default()
    };
    for (t, skip) in chain(&all, m.lease, start) {
        let data = remote
            .store()
            .get(&remote.key(&t.key()))
            .await?
            .bytes()
            .await?;
        if data.len() as u64 != t.to - t.from {
            return Err(Error::Bucket(format!(
                "{}: {} bytes, its name says {}",
                t.key(),
                data.len(),
                t.to - t.from
            )));
        }
        let path = engine::tiering::segment_file(dir, t.no);
        let at = t.from + skip;
        let part = data.slice(skip as usize..);
        let n = part.len() as u64;
        tokio::task::spawn_blocking(move || {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            f.write_all_at(&part, at)?;
            f.sync_all()
        })
        .await
        .map_err(|e| Error::Io("writing a tail".into(), std::io::Error::other(e)))?
        .map_err(|e| Error::Io(format!("writing tail {}", t.key()), e))?;
        laid.tails += 1;
        laid.bytes += n;
        laid.end = (t.no.0, t.to);
    }
    let segs = dir.join("segments");
    std::fs::File::open(&segs)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io(format!("syncing {}", segs.display()), e))?;
    Ok(laid)
}

/// The tails no kept commit point needs: every tail of a lease older than
/// the oldest kept one's, and those of a kept lease ending at or before
/// the replay point of that lease's oldest kept commit point. Tails of
/// leases newer than every kept commit point are kept.
pub(crate) fn unneeded(
    tails: &[TailKey],
    kept: &[(crate::layout::CommitKey, Option<(SegmentNo, u64)>)],
) -> Vec<TailKey> {
    let Some(oldest) = kept.iter().map(|(k, _)| k.lease).min() else {
        return Vec::new();
    };
    let newest = kept.iter().map(|(k, _)| k.lease).max().unwrap_or(0);
    tails
        .iter()
        .filter(|t| {
            if t.lease < oldest {
                return true;
            }
            if t.lease > newest {
                return false;
            }
            // The oldest kept commit point of this lease.
            let first = kept
                .iter()
                .filter(|(k, _)| k.lease == t.lease)
                .min_by_key(|(k, _)| k.generation);
            match first {
                Some((_, Some((no, off)))) => (t.no, t.to) <= (*no, *off),
                // A lease between kept ones with no commit point of its own:
                // no kept commit point chains its tails.
                Some((_, None)) => false,
                None => true,
            }
        })
        .copied()
        .collect()
}

/// A log position as (segment, offset).
pub(crate) fn split(a: LogAddr) -> (SegmentNo, u64) {
    (a.segment(), a.offset())
}

/// Reads bytes `[from, to)` of segment file `path` (`to == None`: to its
/// end), checking the file is still that segment afterwards (the cleaner
/// may retire it meanwhile).
pub(crate) fn read_range(path: &Path, from: u64, to: Option<u64>) -> Result<bytes::Bytes> {
    let what = || path.display().to_string();
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if gone(&e) => return Err(Error::Retired(what())),
        Err(e) => return Err(Error::Io(format!("opening {}", what()), e)),
    };
    let meta = f
        .metadata()
        .map_err(|e| Error::Io(format!("reading {}", what()), e))?;
    let to = to.unwrap_or(meta.len());
    if to < from || to > meta.len() {
        return Err(Error::Io(
            format!("reading {}", what()),
            std::io::Error::other(format!(
                "bytes {from}..{to} asked of a {}-byte file",
                meta.len()
            )),
        ));
    }
    let mut buf = vec![0u8; (to - from) as usize];
    f.read_exact_at(&mut buf, from)
        .map_err(|e| Error::Io(format!("reading {}", what()), e))?;
    match std::fs::metadata(path) {
        Ok(m) if m.ino() == meta.ino() && m.dev() == meta.dev() => Ok(buf.into()),
        Ok(_) => Err(Error::Retired(what())),
        Err(e) if gone(&e) => Err(Error::Retired(what())),
        Err(e) => Err(Error::Io(format!("checking {}", what()), e)),
    }
}

/// The tail objects that carry the log of data directory `dir` from `from`
/// to `to` (positions in the log; `to` is past `from`): one per segment,
/// the ones before `to`'s segment sealed and read to their file's end.
pub(crate) fn plan(dir: &Path, lease: u64, from: LogAddr, to: LogAddr) -> Result<Vec<TailKey>> {
    let (fs, fo) = split(from);
    let (ts, to_off) = split(to);
    let mut out = Vec::new();
    for no in fs.0..=ts.0 {
        let no = SegmentNo(no);
        let start = if no == fs { fo } else { 0 };
        let path = engine::tiering::segment_file(dir, no);
        if no == ts {
            if to_off > start {
                out.push(TailKey {
                    lease,
                    no,
                    from: start,
                    to: to_off,
                    sealed: false,
                });
            }
            continue;
        }
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            // Segment numbers follow the log without gaps: a missing one
            // was retired by the cleaner (two local checkpoints past it),
            // and a commit point must carry the log past it instead.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Retired(path.display().to_string()))
            }
            Err(e) => return Err(Error::Io(format!("reading {}", path.display()), e)),
        };
        out.push(TailKey {
            lease,
            no,
            from: start,
            to: len.max(start),
            sealed: true,
        });
    }
    Ok(out)
}

/// Uploads tails `keys` of data directory `dir` (create-only; one already
/// there with the same length is an earlier attempt's), a few at once.
/// Returns the bytes put.
pub(crate) async fn put(remote: &Remote, dir: &Path, keys: &[TailKey]) -> Result<u64> {
    let jobs = keys.iter().map(|t| async move {
        let path = engine::tiering::segment_file(dir, t.no);
        let (from, to) = (t.from, t.to);
        let data = tokio::task::spawn_blocking(move || read_range(&path, from, Some(to)))
            .await
            .map_err(|e| Error::Io("reading a tail".into(), std::io::Error::other(e)))??;
        let len = data.len() as u64;
        let put = crate::upload::put_once(remote, &t.key(), data, async |r, key| {
            Ok(r.store().head(key).await?.size == len)
        })
        .await?;
        Ok::<u64, Error>(if put { len } else { 0 })
    });
    let mut done = futures_util::stream::iter(jobs).buffer_unordered(4);
    let mut bytes = 0;
    while let Some(r) = done.next().await {
        bytes += r?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::CommitKey;

    fn t(lease: u64, no: u32, from: u64, to: u64, sealed: bool) -> TailKey {
        TailKey {
            lease,
            no: SegmentNo(no),
            from,
            to,
            sealed,
        }
    }

    #[test]
    fn keys_parse() {
        for k in [t(3, 7, 123456, 130000, false), t(1, 2, 0, 0, true)] {
            assert_eq!(TailKey::parse(&k.key()), Some(k));
        }
        assert_eq!(
            t(3, 7, 5, 9, true).key(),
            "tails/l-0000000003/seg-00000007.000000000005-000000000009.sealed"
        );
        assert_eq!(TailKey::parse("tails/l-3/seg-7.5-9"), None);
        // from past to
        assert_eq!(
            TailKey::parse("tails/l-0000000003/seg-00000007.000000000009-000000000005"),
            None
        );
    }

    #[test]
    fn the_chain_rule() {
        let tails = vec![
            // lease 2: from the replay point (5, 100) on, with an older
            // tail reaching over it and a sealed segment 5.
            t(2, 5, 40, 120, false),
            t(2, 5, 120, 300, false),
            t(2, 5, 120, 200, false),
            t(2, 5, 300, 400, true),
            t(2, 6, 0, 50, false),
            t(2, 6, 50, 80, false),
            // after a gap: never used
            t(2, 6, 90, 99, false),
            // a fenced writer's tails (lease 1) at the same places
            t(1, 5, 100, 500, false),
            t(1, 6, 0, 999, false),
        ];
        let c = chain(&tails, 2, (SegmentNo(5), 100));
        assert_eq!(
            c,
            vec![
                (t(2, 5, 40, 120, false), 60),
                (t(2, 5, 120, 300, false), 0),
                (t(2, 5, 300, 400, true), 0),
                (t(2, 6, 0, 50, false), 0),
                (t(2, 6, 50, 80, false), 0),
            ]
        );
        // Lease 1's chain uses only lease 1's tails.
        assert_eq!(
            chain(&tails, 1, (SegmentNo(5), 100)),
            vec![(t(1, 5, 100, 500, false), 0)]
        );
        // No tail at the replay point: nothing.
        assert!(chain(&tails, 2, (SegmentNo(5), 10)).is_empty());
        // An empty sealed tail at a segment's end moves on to the next.
        let tails = vec![t(4, 8, 64, 64, true), t(4, 10, 0, 5, false)];
        assert_eq!(
            chain(&tails, 4, (SegmentNo(8), 64)),
            vec![(tails[0], 0), (tails[1], 0)]
        );
    }

    #[test]
    fn pruning_rule() {
        let ck = |lease, generation| CommitKey { lease, generation };
        let tails = vec![
            t(1, 5, 0, 100, false),
            t(2, 5, 0, 100, false),
            t(2, 5, 100, 200, false),
            t(2, 6, 0, 10, false),
            t(3, 1, 0, 10, false),
        ];
        // Kept: generations 8 and 9 of lease 2, replay points (5, 100) and
        // (6, 0).
        let kept = vec![
            (ck(2, 9), Some((SegmentNo(6), 0))),
            (ck(2, 8), Some((SegmentNo(5), 100))),
        ];
        assert_eq!(
            unneeded(&tails, &kept),
            vec![t(1, 5, 0, 100, false), t(2, 5, 0, 100, false)]
        );
    }
}
