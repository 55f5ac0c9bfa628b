//! Deletes reaching the bucket: after a generation is committed there, the
//! newest `keep` commit points (at least 2) are kept with every object
//! they name; older commit points are deleted first, then every segment
//! object no kept commit point names (segments the cleaner retired, the
//! shorter copies of segments that were active, leftovers of an upload cut
//! short), and the tails (`tail.rs`) no kept commit point chains. Runs on
//! the upload thread between generations, so nothing it
//! deletes is being uploaded for the next one (docs/design.md, "Object
//! storage", for why a restore never sees a commit point whose objects
//! are gone).

use crate::layout::{generation_key, SEGMENTS};
use crate::remote::Remote;
use crate::Result;
use futures_util::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::HashSet;

/// What a pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Commit points deleted.
    pub generations: u64,
    /// Tail objects deleted.
    pub tails: u64,
    /// Segment objects deleted (their keys, relative to the prefix).
    pub segments: Vec<String>,
    /// Bytes of the segment objects deleted.
    pub bytes: u64,
}

/// Keeps the newest `keep` commit points of `remote` and what they name;
/// deletes the rest, but never an object of a lease newer than `lease`
/// (the writer's own): a writer not yet aware it was fenced leaves the
/// newer writer's objects alone. `tails`: the bucket may hold tails (else
/// their listing is skipped).
pub(crate) async fn prune(remote: &Remote, keep: usize, lease: u64, tails: bool) -> Result<Pruned> {
    let keep = keep.max(2);
    let newer =
        |rel: &str| crate::layout::parse_segment_key(rel).is_some_and(|(_, l, _)| l > lease);
    let mut gens = crate::restore::generations(remote).await?;
    gens.reverse();
    let mut out = Pruned::default();
    if gens.is_empty() {
        return Ok(out);
    }
    let mut named = HashSet::new();
    let mut kept = Vec::new();
    for &g in gens.iter().take(keep) {
        let m = crate::restore::fetch_manifest(remote, g).await?;
        kept.push((g, m.replay_point()));
        named.extend(m.segments.into_iter().map(|s| s.key));
    }
    for &g in gens.iter().skip(keep).filter(|g| g.lease <= lease) {
        remote
            .store()
            .delete(&remote.key(&generation_key(g)))
            .await?;
        out.generations += 1;
    }
    let objects: Vec<(String, u64)> = remote
        .store()
        .list(Some(&remote.folder(SEGMENTS)))
        .map_ok(|m| (remote.rel(&m.location), m.size))
        .try_filter_map(|(r, size)| async move { Ok(r.map(|r| (r, size))) })
        .try_collect()
        .await?;
    for (rel, size) in objects {
        if named.contains(&rel) || newer(&rel) {
            continue;
        }
        remote.store().delete(&remote.key(&rel)).await?;
        out.bytes += size;
        out.segments.push(rel);
    }
    if !tails {
        return Ok(out);
    }
    let tails = crate::tail::list(remote).await?;
    let keys: Vec<_> = tails.iter().map(|(k, _)| *k).collect();
    for t in crate::tail::unneeded(&keys, &kept)
        .into_iter()
        .filter(|t| t.lease <= lease)
    {
        remote.store().delete(&remote.key(&t.key())).await?;
        out.tails += 1;
        out.bytes += t.to - t.from;
    }
    Ok(out)
}
