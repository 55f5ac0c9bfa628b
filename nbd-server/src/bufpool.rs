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
        if (MIN_POOLED..=MAX_POOLED).contains(&len) {
            let mut g = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let (bufs, bytes) = &mut *g;
            if let Some(i) = bufs.iter().rposition(|b| b.capacity() >= len) {
                let b = bufs.swap_remove(i);
                *bytes -= b.capacity();
                return b;
            }
        }
        Vec::with_capacity(len)
    }

    /// A zero-filled buffer of `len` bytes.
    pub(crate) fn take_zeroed(&self, len: usize) -> Vec<u8> {
        let mut b = self.take(len);
        b.resize(len, 0);
        b
    }

    /// Returns a buffer for reuse (or frees it).
    pub(crate) fn give(&self, mut b: Vec<u8>) {
        let cap = b.capacity();
        if !(MIN_POOLED..=MAX_POOLED).contains(&cap) {
            return;
        }
        let mut g = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (bufs, bytes) = &mut *g;
        if *bytes + cap <= MAX_IDLE_BYTES {
            b.clear();
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
        let b = p.take_zeroed(1 << 20);
        assert_eq!(b.len(), 1 << 20);
        assert!(b.iter().all(|&x| x == 0));
        let ptr = b.as_ptr();
        p.give(b);
        let mut c = p.take(100_000);
        assert_eq!(c.as_ptr(), ptr);
        assert!(c.is_empty());
        c.extend_from_slice(&[1, 2, 3]);
        p.give(c);
        // Reused buffers come back zeroed when asked.
        assert!(p.take_zeroed(1 << 20).iter().all(|&x| x == 0));
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
