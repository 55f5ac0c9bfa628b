//! A server-wide pool of large I/O buffers (write payloads, read replies).
//! Each 1 MiB request otherwise allocates and frees a 1 MiB buffer on
//! different threads; glibc then often serves it with a fresh `mmap`, and
//! page-faulting and zeroing fresh pages cost more than the I/O itself.
//! Buffers from 64 KiB to 4 MiB are kept, up to 64 MiB in all.

use std::sync::Mutex;

/// Smallest capacity worth pooling.
const MIN_POOLED: usize = 64 * 1024;
/// Largest capacity pooled (bigger requests allocate).
const MAX_POOLED: usize = (4 << 20) + 4096;
/// Most bytes kept idle.
const MAX_IDLE_BYTES: usize = 64 << 20;

/// Recycled buffers.
#[derive(Default)]
pub(crate) struct BufPool {
    idle: Mutex<(Vec<Vec<u8>>, usize)>,
}

impl BufPool {
    /// An empty buffer with room for `len` bytes.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut b = self.pooled(len).unwrap_or_else(|| Vec::with_capacity(len));
        b.clear();
        b
    }

    /// A buffer of `len` bytes whose contents are unspecified: bytes of an
    /// earlier request may remain. Only for callers that overwrite all of it
    /// before anything is sent (an engine read fills every byte or fails);
    /// it saves zeroing a megabyte per read reply.
    pub(crate) fn take_overwritten(&self, len: usize) -> Vec<u8> {
        match self.pooled(len) {
            Some(mut b) if b.len() >= len => {
                b.truncate(len);
                b
            }
            Some(mut b) => {
                b.resize(len, 0);
                b
            }
            None => vec![0u8; len],
        }
    }

    /// A pooled buffer with room for `len` bytes, as it was given back.
    fn pooled(&self, len: usize) -> Option<Vec<u8>> {
        if !(MIN_POOLED..=MAX_POOLED).contains(&len) {
            return None;
        }
        let mut g = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (bufs, bytes) = &mut *g;
        let i = bufs.iter().rposition(|b| b.capacity() >= len)?;
        let b = bufs.swap_remove(i);
        *bytes -= b.capacity();
        Some(b)
    }

    /// Returns a buffer for reuse (or frees it).
    pub(crate) fn give(&self, b: Vec<u8>) {
        let cap = b.capacity();
        if !(MIN_POOLED..=MAX_POOLED).contains(&cap) {
            return;
        }
        let mut g = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (bufs, bytes) = &mut *g;
        if *bytes + cap <= MAX_IDLE_BYTES {
            // Kept with its length: `take_overwritten` reuses those bytes.
            *bytes += cap;
            bufs.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_bounds() {
        let p = BufPool::default();
        let b = p.take_overwritten(1 << 20);
        assert_eq!(b.len(), 1 << 20);
        let ptr = b.as_ptr();
        p.give(b);
        // A write payload buffer comes back empty, with room.
        let mut c = p.take(100_000);
        assert_eq!(c.as_ptr(), ptr);
        assert!(c.is_empty() && c.capacity() >= 100_000);
        c.extend_from_slice(&[1, 2, 3]);
        p.give(c);
        // A read reply buffer comes back at the length asked, longer or
        // shorter than it was given back (only the extension is zeroed).
        let o = p.take_overwritten(1 << 20);
        assert_eq!(o.as_ptr(), ptr);
        assert_eq!(o.len(), 1 << 20);
        assert_eq!(&o[..3], &[1, 2, 3]);
        p.give(o);
        assert_eq!(p.take_overwritten(512 << 10).len(), 512 << 10);
        assert_eq!(p.take_overwritten(100).len(), 100);
        // Small buffers are not kept; idle bytes are bounded.
        p.give(vec![0u8; 100]);
        for _ in 0..100 {
            p.give(Vec::with_capacity(1 << 20));
        }
        assert!(p.idle.lock().unwrap().1 <= MAX_IDLE_BYTES);
        assert!(p
            .idle
            .lock()
            .unwrap()
            .0
            .iter()
            .all(|b| b.capacity() >= MIN_POOLED));
    }
}
