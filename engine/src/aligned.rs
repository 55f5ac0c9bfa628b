//! Owned 4 KiB-aligned buffers for large client writes
//! ([`Store::write_owned`](crate::Store::write_owned)): the NBD server
//! reads a write's payload from its socket straight into one, the engine
//! takes it, queues it as it is and writes it `O_DIRECT` from there as
//! the payloads of an aligned extent Write record (docs/design.md,
//! "Aligned extent writes"). No copy of the payload is made on the way.
//!
//! The alignment is had without `unsafe`: a `Vec<u8>` 4 KiB longer than
//! asked, used from its first 4 KiB-aligned byte; the `Vec` is never grown
//! (only its fixed window is handed out), so the window never moves.
//! Buffers come from, and go back to when dropped, a small pool per store
//! (fresh megabyte allocations cost page faults and zeroing per request).

use parking_lot::Mutex;
use std::sync::{Arc, Weak};

/// Alignment of the window (memory address), a multiple of every common
/// logical block size.
pub const BUF_ALIGN: usize = 4096;
/// Most idle bytes a pool keeps.
const POOL_IDLE_MAX: usize = 64 << 20;

/// A buffer of `len` bytes starting at a 4 KiB-aligned address. Zeroed
/// when first allocated; a pooled one holds whatever its last user left.
pub struct AlignedBuf {
    buf: Vec<u8>,
    start: usize,
    len: usize,
    pool: Weak<AlignedPool>,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes, in no pool.
    pub fn new(len: usize) -> AlignedBuf {
        Self::fresh(len, Weak::new())
    }

    fn fresh(len: usize, pool: Weak<AlignedPool>) -> AlignedBuf {
        let buf = vec![0u8; len + BUF_ALIGN];
        let start = buf.as_ptr().align_offset(BUF_ALIGN);
        AlignedBuf {
            buf,
            start,
            len,
            pool,
        }
    }

    /// Bytes in the buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room of the underlying allocation (what the pool matches on).
    fn room(&self) -> usize {
        self.buf.len() - self.start
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give(std::mem::take(&mut self.buf));
        }
    }
}

/// Idle buffers of one store, given out by [`AlignedPool::take`].
#[derive(Debug, Default)]
pub struct AlignedPool {
    idle: Mutex<(Vec<Vec<u8>>, usize)>,
}

impl AlignedPool {
    /// A buffer of `len` bytes (contents unspecified when pooled), which
    /// goes back to this pool when dropped.
    pub fn take(self: &Arc<Self>, len: usize) -> AlignedBuf {
        let pooled = {
            let mut g = self.idle.lock();
            let (bufs, bytes) = &mut *g;
            let i = bufs
                .iter()
                .rposition(|b| b.len() >= len + BUF_ALIGN && b.len() <= 2 * len + BUF_ALIGN);
            i.map(|i| {
                let b = bufs.swap_remove(i);
                *bytes -= b.len();
                b
            })
        };
        match pooled {
            Some(buf) => {
                let start = buf.as_ptr().align_offset(BUF_ALIGN);
                let b = AlignedBuf {
                    buf,
                    start,
                    len,
                    pool: Arc::downgrade(self),
                };
                debug_assert!(b.room() >= len);
                b
            }
            None => AlignedBuf::fresh(len, Arc::downgrade(self)),
        }
    }

    fn give(&self, buf: Vec<u8>) {
        let mut g = self.idle.lock();
        let (bufs, bytes) = &mut *g;
        if *bytes + buf.len() <= POOL_IDLE_MAX {
            *bytes += buf.len();
            bufs.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_recycled() {
        let pool = Arc::new(AlignedPool::default());
        let mut a = pool.take(1 << 20);
        assert_eq!(a.len(), 1 << 20);
        assert_eq!(a.as_ptr() as usize % BUF_ALIGN, 0);
        a[5] = 7;
        let at = a.as_ptr();
        drop(a);
        // The same allocation comes back, still aligned.
        let b = pool.take(1 << 20);
        assert_eq!(b.as_ptr(), at);
        assert_eq!(b[5], 7);
        // A much smaller request does not take a big idle buffer.
        drop(b);
        let c = pool.take(8192);
        assert_ne!(c.as_ptr(), at);
        assert_eq!(c.as_ptr() as usize % BUF_ALIGN, 0);
        let d = AlignedBuf::new(100);
        assert!(d.iter().all(|&x| x == 0) && d.len() == 100 && !d.is_empty());
    }
}
