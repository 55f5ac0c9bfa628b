//! Reading segment bytes back from the bucket: the engine's
//! [`SegmentSource`] for segments it gave up (evicted) or never had (a lazy
//! restore). Each read fetches only the 64 KiB-aligned blocks of the range
//! it needs that are not in a small in-memory range cache, with one ranged
//! GET per contiguous run of missing blocks; the engine checks what it gets
//! (record and chunk crcs) as it checks its own files.
//!
//! Which object holds a segment comes from the newest commit point (the
//! whole `seg-N.log`, or `seg-N.log.upto-X` for a segment that was active);
//! the uploader refreshes that after each commit, and a read that finds its
//! object gone (deleted once no kept commit point needs it) reloads the
//! newest commit point once and tries again.

use crate::layout::Manifest;
use crate::remote::Remote;
use crate::{Error, Result};
use engine::tiering::SegmentSource;
use engine::SegmentNo;
use lru::LruCache;
use object_store::ObjectStoreExt;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Granularity of fetches and of the range cache.
pub const FETCH_BLOCK: u64 = 64 << 10;

/// The range reader's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchStats {
    /// Ranged GETs issued.
    pub range_gets: u64,
    /// Bytes they returned.
    pub range_bytes: u64,
    /// Total time spent in them, microseconds.
    pub range_get_micros: u64,
    /// Blocks served from the range cache.
    pub cache_hits: u64,
}

/// Where one segment's bytes are in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Located {
    key: String,
    len: u64,
    whole: bool,
}

/// Reads segment ranges from the bucket (see the module docs).
pub struct RemoteSource {
    remote: Remote,
    rt: tokio::runtime::Runtime,
    segs: RwLock<HashMap<SegmentNo, Located>>,
    cache: Mutex<LruCache<(u32, u64), bytes::Bytes>>,
    gets: AtomicU64,
    bytes: AtomicU64,
    micros: AtomicU64,
    hits: AtomicU64,
}

impl std::fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSource")
            .field("remote", &self.remote)
            .finish()
    }
}

impl RemoteSource {
    /// A reader of `remote`'s segment objects keeping up to `cache_bytes`
    /// of fetched blocks in memory. Knows no segment until
    /// [`RemoteSource::load_newest`] or the uploader tells it.
    pub fn new(remote: Remote, cache_bytes: u64) -> Result<Arc<RemoteSource>> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blockd-fetch")
            .enable_all()
            .build()
            .map_err(|e| Error::Io("starting the fetch runtime".into(), e))?;
        let blocks = ((cache_bytes / FETCH_BLOCK) as usize).max(1);
        Ok(Arc::new(RemoteSource {
            remote,
            rt,
            segs: RwLock::new(HashMap::new()),
            cache: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(blocks).expect("at least one"),
            )),
            gets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            micros: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }))
    }

    /// Runs `fut` on the reader's own runtime and waits for it, from any
    /// thread (an engine caller may be on another runtime's thread).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().expect("the fetch runtime runs until dropped")
    }

    /// Learns where every segment of the bucket's newest commit point is;
    /// returns its generation (`None`: the bucket holds none).
    pub fn load_newest(&self) -> Result<Option<u64>> {
        let remote = self.remote.clone();
        let m = self.run(async move {
            match crate::restore::newest_generation(&remote).await? {
                Some(g) => crate::restore::fetch_manifest(&remote, g).await.map(Some),
                None => Ok(None),
            }
        })?;
        Ok(m.map(|m| {
            self.learn(&m);
            m.generation
        }))
    }

    /// Learns where the segments of commit point `m` are.
    pub(crate) fn learn(&self, m: &Manifest) {
        let mut segs = self.segs.write();
        for s in &m.segments {
            let no = SegmentNo(s.no);
            let whole = crate::layout::parse_segment_key(&s.key).is_some_and(|k| k.2.is_none());
            let new = Located {
                key: s.key.clone(),
                len: s.len,
                whole,
            };
            // A longer copy of a segment supersedes a shorter one.
            if segs.get(&no).is_none_or(|o| new.whole || new.len >= o.len) {
                segs.insert(no, new);
            }
        }
    }

    /// Whether segment `no` is in the bucket whole (under a commit point
    /// this reader learned): such a segment may be evicted.
    pub fn is_whole(&self, no: SegmentNo) -> bool {
        self.segs.read().get(&no).is_some_and(|l| l.whole)
    }

    /// The counters.
    pub fn stats(&self) -> FetchStats {
        FetchStats {
            range_gets: self.gets.load(Ordering::Relaxed),
            range_bytes: self.bytes.load(Ordering::Relaxed),
            range_get_micros: self.micros.load(Ordering::Relaxed),
            cache_hits: self.hits.load(Ordering::Relaxed),
        }
    }

    /// One ranged GET of `[start, end)` of `key`.
    fn get_range(&self, key: &str, start: u64, end: u64) -> Result<bytes::Bytes> {
        let remote = self.remote.clone();
        let path = remote.key(key);
        let t = Instant::now();
        let got = self.run(async move { remote.store().get_range(&path, start..end).await })?;
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(got.len() as u64, Ordering::Relaxed);
        self.micros
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        if got.len() as u64 != end - start {
            return Err(Error::Bucket(format!(
                "{key}: asked for bytes {start}..{end}, got {}",
                got.len()
            )));
        }
        Ok(got)
    }

    /// Reads `buf.len()` bytes at `offset` of segment `no` (fewer at the
    /// end of its copy).
    fn read(&self, no: SegmentNo, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let known = self.segs.read().get(&no).cloned();
        let loc = match known {
            Some(l) => l,
            None => {
                self.load_newest()?;
                self.segs.read().get(&no).cloned().ok_or_else(|| {
                    Error::Bucket(format!(
                        "segment {} is in no commit point of {}",
                        no.0, self.remote
                    ))
                })?
            }
        };
        if offset >= loc.len || buf.is_empty() {
            return Ok(0);
        }
        let end = (offset + buf.len() as u64).min(loc.len);
        let (first, last) = (offset / FETCH_BLOCK, (end - 1) / FETCH_BLOCK);
        let mut blocks: Vec<Option<bytes::Bytes>> = {
            let mut c = self.cache.lock();
            (first..=last).map(|b| c.get(&(no.0, b)).cloned()).collect()
        };
        self.hits.fetch_add(
            blocks.iter().filter(|b| b.is_some()).count() as u64,
            Ordering::Relaxed,
        );
        let mut i = 0;
        while i < blocks.len() {
            if blocks[i].is_some() {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < blocks.len() && blocks[j].is_none() {
                j += 1;
            }
            let start = (first + i as u64) * FETCH_BLOCK;
            let stop = ((first + j as u64) * FETCH_BLOCK).min(loc.len);
            let got = self.get_range(&loc.key, start, stop)?;
            let mut c = self.cache.lock();
            for (k, slot) in blocks[i..j].iter_mut().enumerate() {
                let a = k as u64 * FETCH_BLOCK;
                let b = (a + FETCH_BLOCK).min(got.len() as u64);
                let piece = got.slice(a as usize..b as usize);
                c.put((no.0, first + (i + k) as u64), piece.clone());
                *slot = Some(piece);
            }
            i = j;
        }
        let mut done = 0usize;
        let mut at = offset;
        for b in blocks.iter().flatten() {
            let base = (at / FETCH_BLOCK) * FETCH_BLOCK;
            let from = (at - base) as usize;
            let n = (b.len() - from).min((end - at) as usize);
            buf[done..done + n].copy_from_slice(&b[from..from + n]);
            done += n;
            at += n as u64;
            if at >= end {
                break;
            }
        }
        Ok(done)
    }
}

impl SegmentSource for RemoteSource {
    fn read_at(&self, no: SegmentNo, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let first = self.read(no, offset, buf);
        let r = match first {
            // Its object may have been replaced by a newer copy and
            // deleted: look again once.
            Err(Error::Remote(object_store::Error::NotFound { .. })) => {
                self.load_newest().and_then(|_| self.read(no, offset, buf))
            }
            r => r,
        };
        r.map_err(|e| {
            std::io::Error::other(format!(
                "segment {} offset {offset} from the object store: {e}",
                no.0
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ManifestSegment;
    use object_store::{ObjectStoreExt, PutPayload};

    fn manifest(segs: Vec<ManifestSegment>) -> Manifest {
        Manifest {
            format: 1,
            store_id: "x".into(),
            generation: 1,
            superblock: String::new(),
            segments: segs,
            lease: 0,
        }
    }

    #[test]
    fn ranges_are_fetched_by_block_and_cached() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let remote = Remote::new(store.clone(), "p");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let key = crate::layout::segment_key(SegmentNo(3), 0, None);
        let src = RemoteSource::new(remote.clone(), 1 << 20).unwrap();
        let k = remote.key(&key);
        let payload = PutPayload::from(data.clone());
        src.run(async move { store.put(&k, payload).await.map(drop) })
            .unwrap();
        src.learn(&manifest(vec![ManifestSegment {
            no: 3,
            key,
            len: data.len() as u64,
            crc32: 0,
        }]));
        assert!(src.is_whole(SegmentNo(3)));
        assert!(!src.is_whole(SegmentNo(4)));
        let mut buf = vec![0u8; 100_000];
        assert_eq!(
            src.read_at(SegmentNo(3), 70_000, &mut buf).unwrap(),
            100_000
        );
        assert_eq!(&buf[..], &data[70_000..170_000]);
        let s = src.stats();
        assert_eq!(s.range_gets, 1, "{s:?}");
        assert_eq!(s.range_bytes, 2 * FETCH_BLOCK, "{s:?}");
        // Cached now; the tail is short.
        let mut tail = vec![0u8; 50_000];
        assert_eq!(
            src.read_at(SegmentNo(3), 100_000, &mut tail[..4096])
                .unwrap(),
            4096
        );
        assert_eq!(src.stats().range_gets, 1);
        assert_eq!(
            src.read_at(SegmentNo(3), 280_000, &mut tail).unwrap(),
            20_000
        );
        assert_eq!(&tail[..20_000], &data[280_000..]);
        assert_eq!(src.read_at(SegmentNo(3), 400_000, &mut tail).unwrap(), 0);
        let e = src.read_at(SegmentNo(9), 0, &mut tail).unwrap_err();
        assert!(e.to_string().contains("segment 9"), "{e}");
    }
}
