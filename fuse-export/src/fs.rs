//! The FUSE filesystem: a three-directory tree over the store's objects and
//! the file operations mapped to engine calls. Engine errors become errnos
//! here, at the edge.

use engine::{ErrorKind, ExtentKind, ObjectId, ObjectKind, Store};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Objects come and go while mounted: the kernel may not cache entries.
const TTL: Duration = Duration::ZERO;
/// Directory inodes.
const DIRS: [(u64, &str, ObjectKind); 3] = [
    (2, "volumes", ObjectKind::Volume),
    (3, "snapshots", ObjectKind::Snapshot),
    (4, "images", ObjectKind::Image),
];
/// First inode number given to an object.
const FIRST_OBJECT_INO: u64 = 16;
/// Largest single request.
const MAX_IO: u32 = 1 << 20;

const SEEK_DATA: i32 = 3;
const SEEK_HOLE: i32 = 4;
const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
const FALLOC_FL_ZERO_RANGE: i32 = 0x10;

#[derive(Default)]
struct Inodes {
    by_id: HashMap<ObjectId, u64>,
    by_ino: HashMap<u64, ObjectId>,
}

/// The filesystem served by [`crate::mount`].
pub struct BlockdFs {
    store: Store,
    inodes: Mutex<Inodes>,
    uid: u32,
    gid: u32,
}

fn errno(e: &engine::Error) -> Errno {
    match e.kind() {
        ErrorKind::NotFound => Errno::ESTALE,
        ErrorKind::ReadOnly => Errno::EROFS,
        ErrorKind::OutOfRange => Errno::ENOSPC,
        ErrorKind::NoSpace | ErrorKind::Exhausted => Errno::ENOSPC,
        ErrorKind::InvalidArgument | ErrorKind::Ambiguous => Errno::EINVAL,
        ErrorKind::Unsupported => Errno::EOPNOTSUPP,
        ErrorKind::AlreadyExists => Errno::EEXIST,
        ErrorKind::Corrupt | ErrorKind::Io | ErrorKind::FailStopped | ErrorKind::Locked => {
            Errno::EIO
        }
    }
}

impl BlockdFs {
    /// A filesystem over `store`, owned by the current user.
    pub fn new(store: Store) -> Self {
        BlockdFs {
            store,
            inodes: Mutex::new(Inodes::default()),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }

    fn ino_of(&self, id: ObjectId) -> u64 {
        let mut m = self.inodes.lock();
        if let Some(&i) = m.by_id.get(&id) {
            return i;
        }
        let i = FIRST_OBJECT_INO + m.by_id.len() as u64;
        m.by_id.insert(id, i);
        m.by_ino.insert(i, id);
        i
    }

    fn object(&self, ino: INodeNo) -> Option<ObjectId> {
        self.inodes.lock().by_ino.get(&ino.0).copied()
    }

    fn dir_attr(&self, ino: u64) -> FileAttr {
        self.attr(ino, 0, FileType::Directory, 0o755, UNIX_EPOCH)
    }

    fn attr(&self, ino: u64, size: u64, kind: FileType, perm: u16, time: SystemTime) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn object_attr(&self, id: ObjectId) -> Result<FileAttr, Errno> {
        let info = self.store.get(id).map_err(|e| errno(&e))?;
        let perm = if info.kind.is_read_only() {
            0o444
        } else {
            0o644
        };
        let t = UNIX_EPOCH + Duration::from_secs(info.created);
        Ok(self.attr(self.ino_of(id), info.size, FileType::RegularFile, perm, t))
    }

    fn kind_of_dir(ino: INodeNo) -> Option<ObjectKind> {
        DIRS.iter().find(|d| d.0 == ino.0).map(|d| d.2)
    }

    /// Clamps `[offset, offset+len)` to the object's size.
    fn clamp(&self, id: ObjectId, offset: u64, len: u64) -> Result<(u64, u64), Errno> {
        let size = self.store.get(id).map_err(|e| errno(&e))?.size;
        if offset >= size {
            return Ok((size, 0));
        }
        Ok((offset, len.min(size - offset)))
    }

    /// The next offset at or after `offset` whose extent is (or is not) data.
    fn seek(&self, id: ObjectId, offset: u64, want_data: bool) -> Result<Option<u64>, Errno> {
        let size = self.store.get(id).map_err(|e| errno(&e))?.size;
        let mut pos = offset;
        while pos < size {
            let ext = self
                .store
                .block_status(id, pos, size - pos, 4096)
                .map_err(|e| errno(&e))?;
            if ext.is_empty() {
                break;
            }
            for e in &ext {
                if (e.kind == ExtentKind::Data) == want_data {
                    return Ok(Some(e.offset.max(offset)));
                }
                pos = e.offset + e.length;
            }
        }
        Ok(if want_data { None } else { Some(size) })
    }
}

impl Filesystem for BlockdFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.add_capabilities(InitFlags::FUSE_MAX_PAGES);
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        let _ = config.add_capabilities(InitFlags::FUSE_ASYNC_DIO);
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        if parent == INodeNo::ROOT {
            return match DIRS.iter().find(|d| d.1 == name) {
                Some(d) => reply.entry(&TTL, &self.dir_attr(d.0), Generation(0)),
                None => reply.error(Errno::ENOENT),
            };
        }
        let Some(kind) = Self::kind_of_dir(parent) else {
            return reply.error(Errno::ENOENT);
        };
        match self.store.resolve(name, Some(kind)) {
            Ok(id) => match self.object_attr(id) {
                Ok(a) => reply.entry(&TTL, &a, Generation(0)),
                Err(e) => reply.error(e),
            },
            Err(e) if e.kind() == ErrorKind::Ambiguous => reply.error(Errno::EINVAL),
            Err(_) => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT || Self::kind_of_dir(ino).is_some() {
            return reply.attr(&TTL, &self.dir_attr(ino.0));
        }
        match self
            .object(ino)
            .ok_or(Errno::ENOENT)
            .and_then(|id| self.object_attr(id))
        {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some(id) = self.object(ino) else {
            return reply.error(Errno::EPERM);
        };
        if let Some(size) = size {
            let cur = match self.store.get(id) {
                Ok(i) => i,
                Err(e) => return reply.error(errno(&e)),
            };
            if cur.kind.is_read_only() {
                return reply.error(Errno::EROFS);
            }
            // Growing resizes the volume; shrinking is refused like on a
            // block device.
            if size > cur.size {
                if let Err(e) = self.store.resize(id, size) {
                    return reply.error(errno(&e));
                }
            } else if size < cur.size {
                return reply.error(Errno::EPERM);
            }
        }
        match self.object_attr(id) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some(id) = self.object(ino) else {
            return reply.error(Errno::EISDIR);
        };
        let info = match self.store.get(id) {
            Ok(i) => i,
            Err(e) => return reply.error(errno(&e)),
        };
        if info.kind.is_read_only() && flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES,
        );
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let Some(id) = self.object(ino) else {
            return reply.error(Errno::EISDIR);
        };
        let (off, len) = match self.clamp(id, offset, u64::from(size.min(MAX_IO))) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; len as usize];
        match self.store.read(id, off, &mut buf) {
            Ok(()) => reply.data(&buf),
            Err(e) => {
                tracing::warn!(object = %id, offset = off, error = %e, "FUSE read failed");
                reply.error(errno(&e))
            }
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(id) = self.object(ino) else {
            return reply.error(Errno::EISDIR);
        };
        let (off, len) = match self.clamp(id, offset, data.len() as u64) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        if len == 0 && !data.is_empty() {
            return reply.error(Errno::ENOSPC);
        }
        let sync = flags.0
            & (rustix::fs::OFlags::SYNC.bits() as i32 | rustix::fs::OFlags::DSYNC.bits() as i32)
            != 0;
        match self.store.write(id, off, &data[..len as usize], sync) {
            Ok(()) => reply.written(len as u32),
            Err(e) => {
                tracing::warn!(object = %id, offset = off, error = %e, "FUSE write failed");
                reply.error(errno(&e))
            }
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if self.object(ino).is_none() {
            return reply.error(Errno::EINVAL);
        }
        match self.store.flush() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut entries: Vec<(u64, FileType, String)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (1, FileType::Directory, "..".into()),
        ];
        if ino == INodeNo::ROOT {
            entries.extend(
                DIRS.iter()
                    .map(|d| (d.0, FileType::Directory, d.1.to_string())),
            );
        } else if let Some(kind) = Self::kind_of_dir(ino) {
            for o in self.store.list().into_iter().filter(|o| o.kind == kind) {
                let name = o.name.clone().unwrap_or_else(|| o.id.to_string());
                entries.push((self.ino_of(o.id), FileType::RegularFile, name));
            }
        } else {
            return reply.error(Errno::ENOTDIR);
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let objects = self.store.list().len() as u64;
        match rustix::fs::statvfs(self.store.dir()) {
            Ok(s) => {
                let to4k = |n: u64| n.saturating_mul(s.f_frsize) / 4096;
                reply.statfs(
                    to4k(s.f_blocks),
                    to4k(s.f_bfree),
                    to4k(s.f_bavail),
                    objects,
                    0,
                    4096,
                    255,
                    4096,
                )
            }
            Err(e) => reply.error(Errno::from_i32(e.raw_os_error())),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let Some(id) = self.object(ino) else {
            return reply.error(Errno::EISDIR);
        };
        let (off, len) = match self.clamp(id, offset, length) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        let r = if mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE {
            self.store.trim(id, off, len, false)
        } else if mode & !FALLOC_FL_KEEP_SIZE == FALLOC_FL_ZERO_RANGE {
            self.store.write_zeroes(id, off, len, false, false)
        } else if mode & !FALLOC_FL_KEEP_SIZE == 0 {
            // Plain allocation: volumes are thin; within the size there is
            // nothing to do, beyond it the file cannot grow this way.
            if offset.saturating_add(length) > off + len {
                return reply.error(Errno::EOPNOTSUPP);
            }
            Ok(())
        } else {
            return reply.error(Errno::EOPNOTSUPP);
        };
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        // `rm` of a file deletes its object, unless a front end marked it
        // in use (attached to a server).
        let (Some(kind), Some(name)) = (Self::kind_of_dir(parent), name.to_str()) else {
            return reply.error(Errno::EPERM);
        };
        let id = match self.store.resolve(name, Some(kind)) {
            Ok(id) => id,
            Err(e) if e.kind() == ErrorKind::NotFound => return reply.error(Errno::ENOENT),
            Err(e) => return reply.error(errno(&e)),
        };
        match self.store.get(id) {
            Ok(info) if info.status == "in-use" => return reply.error(Errno::EBUSY),
            Ok(_) => {}
            Err(e) => return reply.error(errno(&e)),
        }
        match self.store.delete(id) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        // Objects are made with the command line or the API, not by creat().
        reply.error(Errno::EPERM);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let Some(id) = self.object(ino) else {
            return reply.error(Errno::EISDIR);
        };
        if offset < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE) {
            return reply.error(Errno::EINVAL);
        }
        match self.seek(id, offset as u64, whence == SEEK_DATA) {
            Ok(Some(pos)) => reply.offset(pos as i64),
            Ok(None) => reply.error(Errno::ENXIO),
            Err(e) => reply.error(e),
        }
    }
}
