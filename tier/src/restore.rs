//! `blockd restore`: lays the newest generation committed in the bucket
//! down into an empty data directory — every segment object its commit
//! point names (checked against the length and crc32 the commit point
//! holds), then the superblock slot, written last, so that a restore cut
//! short leaves no store behind. The engine then opens exactly that
//! generation. (For now every segment is downloaded; fetching data lazily
//! with ranged GETs is the next step: docs/design.md, "Object storage".)

use crate::layout::{generation_key, parse_generation_key, Manifest, GENERATIONS};
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
    /// The store's identity.
    pub store_id: String,
    /// Segment files written.
    pub segments: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// How long it took.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The newest generation with a commit point in the bucket, if any.
pub(crate) async fn newest_generation(remote: &Remote) -> Result<Option<u64>> {
    let gens: Vec<u64> = remote
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
    Ok(gens.into_iter().max())
}

/// Reads and checks generation `g`'s commit point.
pub(crate) async fn fetch_manifest(remote: &Remote, g: u64) -> Result<Manifest> {
    let rel = generation_key(g);
    let bytes = remote.store().get(&remote.key(&rel)).await?.bytes().await?;
    Manifest::decode(&bytes, &rel, g)
}

/// Restores the newest committed generation of `remote` into `dir`, which
/// must be absent or empty.
pub fn restore(remote: &Remote, dir: &Path, concurrency: usize) -> Result<RestoreReport> {
    let started = Instant::now();
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io("starting the restore runtime".into(), e))?;
    rt.block_on(async {
        let g = newest_generation(remote)
            .await?
            .ok_or_else(|| Error::Refused(format!("{remote} holds no committed generation")))?;
        let m = fetch_manifest(remote, g).await?;
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
        engine::tiering::restore_layout(dir, &m.superblock()?)?;
        Ok(RestoreReport {
            generation: g,
            store_id: m.store_id.clone(),
            segments: m.segments.len(),
            bytes,
            elapsed: started.elapsed(),
        })
    })
}
