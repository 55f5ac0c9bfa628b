//! `blockd restore`: lays the newest generation committed in the bucket
//! down into an empty data directory — every segment object its commit
//! point names (checked against the length and crc32 the commit point
//! holds), then the superblock slot, written last, so that a restore cut
//! short leaves no store behind. The engine then opens exactly that
//! generation.
//!
//! Both first take the store's lease (`lease.rs`), so the writer serving
//! the bucket until then is fenced before anything is read: every flush
//! it acknowledged is in what the restore reads, and nothing it writes
//! later is used. The tails that follow the commit point (`tail.rs`) are
//! written after its replay point, for the engine's replay to apply; the
//! data directory records the lease, so that `serve` goes on from it.
//!
//! [`restore_lazy`] downloads no segment at all: each one the commit point
//! names becomes a sparse file of its length with a marker saying its
//! bytes are in the bucket (`engine::tiering::place_remote_segments`), so
//! the time is that of listing and reading one commit point plus one small
//! file per segment; opening the store then reads the metadata it needs
//! (checkpoint blob, chunk-table and map pages) with ranged GETs, and
//! client reads fetch data the same way (docs/design.md, "Object
//! storage").

use crate::layout::{generation_key, parse_generation_key, CommitKey, Manifest, GENERATIONS};
use crate::remote::Remote;
use crate::{Error, Result};
use engine::SegmentNo;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a restore laid down.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreReport {
    /// The generation restored (the newest committed in the bucket).
    pub generation: u64,
    /// The lease it was committed under.
    pub from_lease: u64,
    /// The lease the restore took (recorded in the data directory).
    pub lease: u64,
    /// Tail objects laid after its replay point.
    pub tails: usize,
    /// Bytes of those.
    pub tail_bytes: u64,
    /// The store's identity.
    pub store_id: String,
    /// Segment files written.
    pub segments: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Bytes of segment objects left in the bucket, read on demand (a
    /// lazy restore).
    pub remote_bytes: u64,
    /// How long it took.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The newest commit point in the bucket (by lease, then generation), if
/// any.
pub(crate) async fn newest_generation(remote: &Remote) -> Result<Option<CommitKey>> {
    Ok(generations(remote).await?.last().copied())
}

/// The commit points in the bucket, oldest first (by lease, then
/// generation).
pub(crate) async fn generations(remote: &Remote) -> Result<Vec<CommitKey>> {
    let mut gens: Vec<CommitKey> = remote
        .store()
        .list(Some(&remote.folder(GENERATIONS)))
        .map_ok(|m| {
            remote
                .rel(&m.location)
                .and_then(|r| parse_generation_key(&r))
        })
        .try_filter_map(|g| async move { Ok(g) })
        .try_collect()
        .await?;
    gens.sort_unstable();
    Ok(gens)
}

/// Reads and checks generation `g`'s commit point.
pub(crate) async fn fetch_manifest(remote: &Remote, g: CommitKey) -> Result<Manifest> {
    let rel = generation_key(g);
    let bytes = remote.store().get(&remote.key(&rel)).await?.bytes().await?;
    Manifest::decode(&bytes, &rel, g)
}

/// Refuses a data directory that is not absent or empty; creates it.
fn empty_target(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Refused(format!(
                    "{} is not empty: restore writes only into an empty data directory",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?,
        Err(e) => return Err(Error::Io(format!("reading {}", dir.display()), e)),
    }
    Ok(())
}

/// The newest commit point of `remote` (refused when there is none).
async fn newest_manifest(remote: &Remote) -> Result<Manifest> {
    let g = newest_generation(remote)
        .await?
        .ok_or_else(|| Error::Refused(format!("{remote} holds no committed generation")))?;
    fetch_manifest(remote, g).await
}

/// Takes the store's lease for a restore into `dir` (refused, taking
/// nothing, when the bucket holds no commit point).
async fn take_lease(remote: &Remote, dir: &Path) -> Result<u64> {
    if newest_generation(remote).await?.is_none() {
        return Err(Error::Refused(format!(
            "{remote} holds no committed generation"
        )));
    }
    crate::lease::acquire(remote, dir).await
}

/// Restores the newest committed generation of `remote` into `dir`, which
/// must be absent or empty, reading data lazily: every segment stays in
/// the bucket (see the module docs). The store then opens only with the
/// bucket as its segment source.
pub fn restore_lazy(remote: &Remote, dir: &Path) -> Result<RestoreReport> {
    let started = Instant::now();
    empty_target(dir)?;
    let rt = crate::current_thread_runtime("restore")?;
    let lease = rt.block_on(take_lease(remote, dir))?;
    let m = rt.block_on(newest_manifest(remote))?;
    engine::tiering::prepare_layout(dir)?;
    let segs: Vec<(SegmentNo, u64, u64)> = m
        .segments
        .iter()
        .map(|s| {
            let whole = crate::layout::parse_segment_key(&s.key).is_some_and(|k| k.2.is_none());
            (
                SegmentNo(s.no),
                s.len,
                if whole { engine::WHOLE } else { s.len },
            )
        })
        .collect();
    engine::tiering::place_remote_segments(dir, &segs)?;
    let remote_bytes = m.segments.iter().map(|s| s.len).sum();
    let laid = rt.block_on(crate::tail::lay(remote, dir, &m))?;
    crate::lease::record(dir, lease)?;
    engine::tiering::restore_layout(dir, &m.superblock()?)?;
    Ok(RestoreReport {
        generation: m.generation,
        from_lease: m.lease,
        lease,
        tails: laid.tails,
        tail_bytes: laid.bytes,
        store_id: m.store_id.clone(),
        segments: m.segments.len(),
        bytes: m.encode().len() as u64,
        remote_bytes,
        elapsed: started.elapsed(),
    })
}

/// Restores the newest committed generation of `remote` into `dir`, which
/// must be absent or empty, downloading every segment: the store is then
/// independent of the bucket.
pub fn restore(remote: &Remote, dir: &Path, concurrency: usize) -> Result<RestoreReport> {
    let started = Instant::now();
    empty_target(dir)?;
    let rt = crate::current_thread_runtime("restore")?;
    rt.block_on(async {
        let lease = take_lease(remote, dir).await?;
        let m = newest_manifest(remote).await?;
        let g = m.generation;
        engine::tiering::prepare_layout(dir)?;
        let mut bytes = 0;
        let mut done = futures_util::stream::iter(m.segments.iter().map(|s| async move {
            let data = remote
                .store()
                .get(&remote.key(&s.key))
                .await?
                .bytes()
                .await?;
            if data.len() as u64 != s.len || crc32fast::hash(&data) != s.crc32 {
                return Err(Error::Bucket(format!(
                    "{}: {} bytes that do not match its commit point (generation {g})",
                    s.key,
                    data.len()
                )));
            }
            let path = engine::tiering::segment_file(dir, SegmentNo(s.no));
            tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::create(&path)
                    .map_err(|e| Error::Io(format!("creating {}", path.display()), e))?;
                f.write_all(&data)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::Io(format!("writing {}", path.display()), e))?;
                Ok::<_, Error>(data.len() as u64)
            })
            .await
            .map_err(|e| Error::Io("writing a segment".into(), std::io::Error::other(e)))?
        }))
        .buffer_unordered(concurrency.max(1));
        while let Some(n) = done.next().await {
            bytes += n?;
        }
        drop(done);
        let laid = crate::tail::lay(remote, dir, &m).await?;
        crate::lease::record(dir, lease)?;
        engine::tiering::restore_layout(dir, &m.superblock()?)?;
        Ok(RestoreReport {
            generation: g,
            from_lease: m.lease,
            lease,
            tails: laid.tails,
            tail_bytes: laid.bytes,
            store_id: m.store_id.clone(),
            segments: m.segments.len(),
            bytes,
            remote_bytes: 0,
            elapsed: started.elapsed(),
        })
    })
}

/// Commit points and segment objects' (key, size).
pub type BucketContents = (Vec<CommitKey>, Vec<(String, u64)>);

/// What the bucket holds under the prefix: its commit points'
/// generations (ascending) and its segment objects (key relative to the
/// prefix, size), for tools and tests.
pub fn bucket_contents(remote: &Remote) -> Result<BucketContents> {
    let rt = crate::current_thread_runtime("bucket")?;
    rt.block_on(async {
        let gens = generations(remote).await?;
        let mut segs: Vec<(String, u64)> = remote
            .store()
            .list(Some(&remote.folder(crate::layout::SEGMENTS)))
            .map_ok(|m| (remote.rel(&m.location), m.size))
            .try_filter_map(|(r, size)| async move { Ok(r.map(|r| (r, size))) })
            .try_collect()
            .await?;
        segs.sort();
        Ok((gens, segs))
    })
}

/// What the bucket holds for a store, in brief (`blockd stats
/// --object-store` on a store no server holds).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BucketSummary {
    /// The newest commit point (what a restore starts from).
    pub newest_commit_point: Option<CommitKey>,
    /// Tail objects a restore would lay after it, and their bytes.
    pub tails: usize,
    /// Bytes of those.
    pub tail_bytes: u64,
    /// Where the log a restore lays ends (segment, offset).
    pub log_end: Option<(u32, u64)>,
    /// The newest lease, and who took it.
    pub newest_lease: Option<u64>,
    /// Its holder.
    pub lease_holder: Option<String>,
}

/// Reads the bucket's [`BucketSummary`].
pub fn summary(remote: &Remote) -> Result<BucketSummary> {
    let rt = crate::current_thread_runtime("bucket")?;
    rt.block_on(async {
        let mut s = BucketSummary {
            newest_lease: crate::lease::leases(remote).await?.last().copied(),
            ..Default::default()
        };
        if let Some(n) = s.newest_lease {
            s.lease_holder = crate::lease::info(remote, n).await.ok().map(|i| i.holder);
        }
        let Some(k) = newest_generation(remote).await? else {
            return Ok(s);
        };
        let m = fetch_manifest(remote, k).await?;
        s.newest_commit_point = Some(k);
        let Some(start) = m.replay_point() else {
            return Ok(s);
        };
        s.log_end = Some((start.0 .0, start.1));
        let tails: Vec<_> = crate::tail::list(remote)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        for (t, skip) in crate::tail::chain(&tails, m.lease, start) {
            s.tails += 1;
            s.tail_bytes += t.to - t.from - skip;
            s.log_end = Some((t.no.0, t.to));
        }
        Ok(s)
    })
}

/// Commit point `g`, read and checked.
pub fn commit_point(remote: &Remote, g: CommitKey) -> Result<Manifest> {
    let rt = crate::current_thread_runtime("bucket")?;
    rt.block_on(fetch_manifest(remote, g))
}
