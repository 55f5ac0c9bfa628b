//! blockd's object-storage tier: each generation the engine commits
//! locally (a checkpoint) is copied to a bucket — its segment files in log
//! order, then a commit-point object of its own, written create-only — and
//! a fresh machine can lay the newest committed generation back down into
//! an empty data directory. The engine knows nothing of this crate: it
//! tells a [`engine::tiering::CommitObserver`] what each generation needs.
//!
//! ```text
//!  remote.rs   s3://BUCKET/PREFIX (or file:///DIR, memory://) → a Remote:
//!              an object_store client plus the prefix; credentials from
//!              the AWS_* environment, never logged
//!  layout.rs   object keys and the commit-point manifest (JSON)
//!  upload.rs   the Uploader: observer + background thread (tokio),
//!              segments in log order, then the commit point; counters
//!  lease.rs    one writer per prefix: lease objects taken in order,
//!              checked before anything is made visible (fencing)
//!  tail.rs     tail objects: the log past the newest commit point, by
//!              byte range; the rule a restore chains them by
//!  flushes.rs  the `remote` durability mode: flushes wait for the tail
//!              uploader's round that covers them
//!  restore.rs  newest commit point → segments (or, lazily, sparse files
//!              marked remote) → superblock → a store
//!  source.rs   the engine's SegmentSource: ranged GETs of segment
//!              objects in 64 KiB blocks, a small in-memory range cache
//!  cache.rs    the data directory under --cache-dir-size: evict uploaded
//!              sealed segments, least recently read first
//!  prune.rs    deletes: keep the newest commit points and what they name
//! ```
//!
//! The bucket layout and the commit-point protocol: docs/design.md,
//! "Object storage".

pub mod cache;
mod flushes;
mod layout;
pub mod lease;
mod prune;
mod remote;
mod restore;
mod source;
pub mod tail;
mod upload;

pub use flushes::log_distance;
pub use layout::{CommitKey, Manifest, ManifestSegment};
pub use remote::{Remote, S3Config};
pub use restore::{
    bucket_contents, commit_point, restore, restore_lazy, summary, BucketContents, BucketSummary,
    RestoreReport,
};
pub use source::{FetchStats, RemoteSource, FETCH_BLOCK};
pub use upload::{Durability, TierStats, Uploader, UploaderOptions};

/// What went wrong in the tier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--object-store` URL or the environment is unusable.
    #[error("object store configuration: {0}")]
    Config(String),
    /// The object store refused or failed a request.
    #[error("object store: {0}")]
    Remote(#[from] object_store::Error),
    /// The engine failed (reading the store, laying out a restore).
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A local file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The bucket holds something this store cannot use: another store's
    /// generations, a malformed or mismatching object.
    #[error("bucket contents: {0}")]
    Bucket(String),
    /// Another writer committed the same generation (fencing: only one
    /// writer per store prefix).
    #[error("generation {0} was already committed in the bucket by another writer")]
    Fenced(u64),
    /// A newer writer took the store's lease: this one must stop writing.
    #[error("fenced by lease {newer}: another writer took over this store's bucket (this writer held lease {held}); it stops writing")]
    LeaseLost {
        /// The lease this writer held.
        held: u64,
        /// The newest lease in the bucket.
        newer: u64,
    },
    /// A segment file was retired by the cleaner while its generation was
    /// being copied (that generation cannot be copied any more).
    #[error("segment file {0} was retired while it was read")]
    Retired(String),
    /// A restore target that is not empty, or a bucket with nothing in it.
    #[error("{0}")]
    Refused(String),
}

/// The tier's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// A current-thread tokio runtime for the synchronous entry points and
/// the tier's own threads; `what` names its user in the error.
pub(crate) fn current_thread_runtime(what: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("starting the {what} runtime"), e))
}
