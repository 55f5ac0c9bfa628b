//! blockd's FUSE export: every volume, snapshot and image of a store as a
//! plain file, so any program can use one without the NBD kernel module.
//!
//! ```text
//! MOUNT/volumes/<name or id>     read-write, size = volume size
//! MOUNT/snapshots/<name or id>   read-only
//! MOUNT/images/<name or id>      read-only
//! ```
//!
//! Files are opened with `direct_io`: every read and write goes straight to
//! the engine (no page cache), so the bytes seen here are always the bytes
//! seen over NBD, and 1 MiB application I/O arrives as 1 MiB requests.
//! fsync and fdatasync flush the engine; fallocate PUNCH_HOLE trims and
//! ZERO_RANGE writes zeroes; SEEK_DATA and SEEK_HOLE come from the
//! allocation map. The crate knows the engine only through [`engine::Store`].

mod fs;

use engine::Store;
use std::path::{Path, PathBuf};

pub use fs::BlockdFs;

/// Errors of the FUSE export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// FUSE is not usable on this machine.
    #[error("FUSE is unavailable: {0}")]
    Unavailable(String),
    /// Mounting failed.
    #[error("mounting {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Unmounting failed.
    #[error("unmounting {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A mounted export; unmounts when [`FuseMount::unmount`] is called or on drop.
pub struct FuseMount {
    session: Option<fuser::BackgroundSession>,
    path: PathBuf,
}

impl FuseMount {
    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts and waits for the session to end.
    pub fn unmount(mut self) -> Result<(), Error> {
        match self.session.take() {
            Some(s) => s.umount_and_join().map_err(|source| Error::Unmount {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if let Err(e) = s.umount_and_join() {
                tracing::warn!(path = %self.path.display(), error = %e, "unmount failed");
            }
        }
    }
}

/// Checks that /dev/fuse and fusermount3 are present, with a clear error.
pub fn check_available() -> Result<(), Error> {
    if !Path::new("/dev/fuse").exists() {
        return Err(Error::Unavailable(
            "/dev/fuse is missing (load the fuse module or run with --device /dev/fuse)".into(),
        ));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("fusermount3").exists()))
        .unwrap_or(false);
    if !on_path {
        return Err(Error::Unavailable(
            "fusermount3 is not installed (install the fuse3 package)".into(),
        ));
    }
    Ok(())
}

/// Mounts `store` at `dir` (created if absent) with `threads` worker threads.
pub fn mount(store: Store, dir: &Path, threads: usize) -> Result<FuseMount, Error> {
    check_available()?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Mount {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        fuser::MountOption::FSName("blockd".into()),
        fuser::MountOption::Subtype("blockd".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoAtime,
    ];
    cfg.n_threads = Some(threads.max(1));
    cfg.clone_fd = true;
    let session =
        fuser::spawn_mount(BlockdFs::new(store), dir, &cfg).map_err(|source| Error::Mount {
            path: dir.to_path_buf(),
            source,
        })?;
    tracing::info!(path = %dir.display(), "FUSE export mounted");
    Ok(FuseMount {
        session: Some(session),
        path: dir.to_path_buf(),
    })
}
