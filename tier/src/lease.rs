//! One writer per store prefix: the lease (docs/design.md, "Object
//! storage", "Fencing").
//!
//! A writer opening the prefix takes the next lease number N with a
//! create-only put of `PREFIX/lease/gen-N` (the highest existing lease is
//! the current holder; leases are never deleted, so they are taken in
//! order and `gen-(N+1)` exists as soon as any newer lease does). Every
//! segment object, commit point and tail the writer uploads carries N,
//! and before making a commit point or tail visible (and again before
//! acknowledging a remote-mode flush) it checks that `gen-(N+1)` does not
//! exist: once it does, the writer is fenced and stops writing.
//!
//! The data directory remembers the lease it last held (or was restored
//! under) in `DIR/object-store-lease`: a plain `serve` goes on only when
//! that is still the bucket's newest lease (else another writer took the
//! store over since), unless told to take over.

use crate::remote::Remote;
use crate::{Error, Result};
use futures_util::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::path::Path;

/// Folder of lease objects.
pub(crate) const LEASES: &str = "lease";
/// The file in the data directory naming the lease it last held.
pub const LEASE_FILE: &str = "object-store-lease";

/// The key (relative to the prefix) of lease `n`.
pub(crate) fn lease_key(n: u64) -> String {
    format!("{LEASES}/gen-{n:010}")
}

/// The lease a key names, if it is one.
pub(crate) fn parse_lease_key(rel: &str) -> Option<u64> {
    let name = rel.strip_prefix(LEASES)?.strip_prefix('/')?;
    crate::layout::digits(name.strip_prefix("gen-")?, 10)
}

/// What a lease object holds: who took it (for messages; never a secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseInfo {
    /// The lease number.
    pub lease: u64,
    /// Host name, process id and data directory of the taker.
    pub holder: String,
    /// When it was taken (seconds since the Unix epoch).
    pub taken_at: u64,
}

/// This process's identity for a lease on data directory `dir`.
fn holder(dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{host} pid {} {}", std::process::id(), dir.display())
}

/// The leases in the bucket, ascending.
pub(crate) async fn leases(remote: &Remote) -> Result<Vec<u64>> {
    let mut v: Vec<u64> = remote
        .store()
        .list(Some(&remote.folder(LEASES)))
        .map_ok(|m| remote.rel(&m.location).and_then(|r| parse_lease_key(&r)))
        .try_filter_map(|g| async move { Ok(g) })
        .try_collect()
        .await?;
    v.sort_unstable();
    Ok(v)
}

/// Reads lease `n`'s object (who holds it).
pub(crate) async fn info(remote: &Remote, n: u64) -> Result<LeaseInfo> {
    let rel = lease_key(n);
    let bytes = remote.store().get(&remote.key(&rel)).await?.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Bucket(format!("{rel}: not a lease: {e}")))
}

/// Takes the next lease: a create-only put of one past the highest; a
/// racing taker that got the same number first makes it try the next.
pub(crate) async fn acquire(remote: &Remote, dir: &Path) -> Result<u64> {
    let mut n = leases(remote).await?.last().copied().unwrap_or(0) + 1;
    for _ in 0..8 {
        let info = LeaseInfo {
            lease: n,
            holder: holder(dir),
            taken_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let body = serde_json::to_vec(&info).expect("a lease always serializes");
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match remote
            .store()
            .put_opts(&remote.key(&lease_key(n)), PutPayload::from(body), opts)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = n, remote = %remote, "took the object store lease");
                return Ok(n);
            }
            Err(object_store::Error::AlreadyExists { .. }) => n += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Refused(format!(
        "{remote}: other writers kept taking leases; gave up at lease {n}"
    )))
}

/// Fails with [`Error::LeaseLost`] when a lease newer than `held` exists
/// (one HEAD of `gen-(held+1)`; leases are taken in order and never
/// deleted).
pub(crate) async fn check(remote: &Remote, held: u64) -> Result<()> {
    match remote.store().head(&remote.key(&lease_key(held + 1))).await {
        Ok(_) => {
            let newest = leases(remote)
                .await
                .ok()
                .and_then(|l| l.last().copied())
                .unwrap_or(held + 1);
            Err(Error::LeaseLost {
                held,
                newer: newest.max(held + 1),
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The lease data directory `dir` last held, if it records one.
pub fn local(dir: &Path) -> Result<Option<u64>> {
    let p = dir.join(LEASE_FILE);
    match std::fs::read_to_string(&p) {
        Ok(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::Bucket(format!("{}: not a lease number", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("reading {}", p.display()), e)),
    }
}

/// Records (durably) that data directory `dir` holds lease `n`.
pub fn record(dir: &Path, n: u64) -> Result<()> {
    let p = dir.join(LEASE_FILE);
    let tmp = dir.join(format!("{LEASE_FILE}.tmp"));
    std::fs::write(&tmp, format!("{n}\n"))
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &p))
        .and_then(|_| std::fs::File::open(dir)?.sync_all())
        .map_err(|e| Error::Io(format!("writing {}", p.display()), e))
}

/// Opens the prefix for writing from data directory `dir`: refuses when
/// the bucket's newest lease is not the one `dir` last held (another
/// writer took the store over since) unless `take_over`; then takes the
/// next lease and records it in `dir`. Returns it, and whether it took
/// the store over from another writer's lease (then the bucket's commit
/// points copy another log than `dir`'s).
pub(crate) async fn take(remote: &Remote, dir: &Path, take_over: bool) -> Result<(u64, bool)> {
    let newest = leases(remote).await?.last().copied();
    let mine = local(dir)?;
    let other = newest.is_some() && newest != mine;
    if let Some(n) = newest.filter(|_| other) {
        let who = info(remote, n)
            .await
            .map(|i| i.holder)
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let mine = mine.map(|m| m.to_string()).unwrap_or_else(|| "none".into());
        if !take_over {
            return Err(Error::Refused(format!(
                "{remote}: lease {n} (taken by {who}) is newer than the lease this data \
                 directory last held ({mine}): another server writes this store. Restore \
                 into a new directory, or serve with --take-over to fence that server and \
                 commit this directory's state over it"
            )));
        }
        // Segments read back from the bucket would be the other writer's.
        let markers = std::fs::read_dir(dir.join("remote"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if markers {
            return Err(Error::Refused(format!(
                "{remote}: cannot take over from lease {n} ({who}): this data directory has \
                 segments that are only in the bucket; restore into a new directory instead"
            )));
        }
        tracing::warn!(lease = n, holder = %who, "taking the store over from another writer's lease");
    }
    let n = acquire(remote, dir).await?;
    record(dir, n)?;
    Ok((n, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn leases_are_taken_in_order_and_fence_older_holders() {
        let rt = rt();
        let remote = Remote::from_url("memory:///p").unwrap();
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        assert_eq!(parse_lease_key(&lease_key(42)), Some(42));
        assert_eq!(parse_lease_key("lease/gen-42"), None);
        // A fresh bucket: lease 1, recorded locally.
        let la = rt.block_on(take(&remote, &a, false)).unwrap().0;
        assert_eq!(la, 1);
        assert_eq!(local(&a).unwrap(), Some(1));
        rt.block_on(check(&remote, la)).unwrap();
        // The same directory again (a restart): lease 2.
        assert_eq!(rt.block_on(take(&remote, &a, false)).unwrap(), (2, false));
        // Another directory is refused without take-over ...
        let e = rt.block_on(take(&remote, &b, false)).unwrap_err();
        assert!(e.to_string().contains("--take-over"), "{e}");
        assert!(e.to_string().contains("lease 2"), "{e}");
        // ... and with it takes lease 3, which fences lease 2.
        assert_eq!(rt.block_on(take(&remote, &b, true)).unwrap(), (3, true));
        let e = rt.block_on(check(&remote, 2)).unwrap_err();
        assert!(matches!(e, Error::LeaseLost { held: 2, newer: 3 }), "{e:?}");
        assert!(e.to_string().contains("fenced by lease 3"), "{e}");
        rt.block_on(check(&remote, 3)).unwrap();
        // The old holder cannot come back without take-over.
        assert!(rt.block_on(take(&remote, &a, false)).is_err());
        let i = rt.block_on(info(&remote, 3)).unwrap();
        assert_eq!(i.lease, 3);
        assert!(i.holder.contains(&b.display().to_string()), "{i:?}");
        // A lease put meanwhile by another taker (4): the next is 5.
        rt.block_on(
            remote
                .store()
                .put(&remote.key(&lease_key(4)), PutPayload::from(b"{}".to_vec())),
        )
        .unwrap();
        let n = rt.block_on(acquire(&remote, &b)).unwrap();
        assert_eq!(n, 5);
    }
}
