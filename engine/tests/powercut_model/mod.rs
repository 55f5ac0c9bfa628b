//! What the power-cut tests share: the store options, tagged block
//! contents, and the disk model that turns an I/O recording into crash
//! images. A [`Disk`] holds each file's durable bytes plus the writes not
//! yet synced (still visible to a process, as after kill -9, which leaves
//! the page cache); a power cut keeps a random, reordered, 4 KiB-torn
//! subset of those and loses the rest.

#![allow(dead_code)]

use blockd_engine::{IoOp, StoreOptions};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::BTreeMap;
use std::path::Path;

/// Blocks per test volume.
pub const BLOCKS: u64 = 384;
/// Block size.
pub const BS: usize = 4096;

/// Small segments and a small dirty limit: rolls, checkpoints and cleaning
/// happen often.
pub fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        dirty_limit_bytes: 256 << 10,
        // Housekeeping on its own thread, as `blockd serve` runs it: the
        // recording then interleaves its I/O with the workload's.
        background_reclaim: std::env::var_os("BLOCKD_POWERCUT_BACKGROUND").is_some(),
        // Checkpoints write their map nodes in several slices (several
        // holds of the store lock), so cuts fall between slices too.
        checkpoint_slice_pages: 8,
        ..Default::default()
    }
}

/// The content of a block written by step `seq`: recognisable and unique to
/// (volume, block, seq).
pub fn content(vol: u8, block: u64, seq: u64) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    b[..4].copy_from_slice(b"TAG!");
    b[4] = vol;
    b[8..16].copy_from_slice(&block.to_le_bytes());
    b[16..24].copy_from_slice(&seq.to_le_bytes());
    let mut x = (u64::from(vol) << 56) ^ (block << 24) ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in b[24..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    b
}

/// Which write (seq) a block holds: `Some(0)` for zeroes, `None` for
/// anything that is not a valid tagged block of this (volume, block).
pub fn decode(vol: u8, block: u64, b: &[u8]) -> Option<u64> {
    if b.iter().all(|&x| x == 0) {
        return Some(0);
    }
    let seq = u64::from_le_bytes(b[16..24].try_into().unwrap());
    (b == content(vol, block, seq).as_slice()).then_some(seq)
}

/// Every file of a data directory (but the lock), by relative path.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["", "segments", "spare"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() && e.file_name() != "lock" {
                let rel = if sub.is_empty() {
                    e.file_name().into_string().unwrap()
                } else {
                    format!("{sub}/{}", e.file_name().into_string().unwrap())
                };
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Writes `data` at `off`; with `torn`, each 4 KiB sector of the file that
/// the write touches lands or not at random.
pub fn apply(file: &mut Vec<u8>, off: u64, data: &[u8], mut torn: Option<&mut StdRng>) {
    let off = off as usize;
    let end = off + data.len();
    let mut pos = off;
    while pos < end {
        let sector_end = ((pos / BS) + 1) * BS;
        let piece_end = sector_end.min(end);
        let lands = torn.as_deref_mut().map(|r| r.gen_bool(0.7)).unwrap_or(true);
        if lands {
            if file.len() < piece_end {
                file.resize(piece_end, 0);
            }
            file[pos..piece_end].copy_from_slice(&data[pos - off..piece_end - off]);
        }
        pos = piece_end;
    }
}

/// A data directory as the disk holds it: each file's durable bytes, and
/// the writes made since its last sync (in order), which a running system
/// still sees (page cache) but a power cut may lose, reorder or tear.
/// Directory operations (create, rename, remove) count as durable at once.
#[derive(Clone, Default)]
pub struct Disk {
    /// Durable bytes per file.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Unsynced writes: (file, offset, bytes).
    pub pending: Vec<(String, u64, Vec<u8>)>,
}

impl Disk {
    /// A cleanly written directory: everything durable.
    pub fn clean(files: BTreeMap<String, Vec<u8>>) -> Disk {
        Disk {
            files,
            pending: Vec::new(),
        }
    }

    /// Applies recorded operations: writes become pending, a sync makes the
    /// file's pending writes durable.
    pub fn replay(&mut self, ops: &[IoOp]) {
        for op in ops {
            match op {
                IoOp::Write { file, offset, data } => {
                    self.pending.push((file.clone(), *offset, data.clone()))
                }
                IoOp::Sync { file } => self.sync(file),
                IoOp::Truncate { file, len } => {
                    // set_len, then fdatasync: what was written lands, then
                    // the file is cut.
                    self.sync(file);
                    self.files
                        .entry(file.clone())
                        .or_default()
                        .resize(*len as usize, 0);
                }
                IoOp::Create { file } => {
                    self.files.entry(file.clone()).or_default();
                }
                IoOp::Remove { file } => {
                    self.files.remove(file);
                    self.pending.retain(|p| &p.0 != file);
                }
                IoOp::Rename { from, to } => {
                    // The inode moves with its content and its unsynced writes.
                    if let Some(content) = self.files.remove(from) {
                        self.files.insert(to.clone(), content);
                    }
                    for p in self.pending.iter_mut().filter(|p| &p.0 == from) {
                        p.0 = to.clone();
                    }
                }
            }
        }
    }

    fn sync(&mut self, file: &str) {
        let mut keep = Vec::new();
        for (f, off, data) in self.pending.drain(..) {
            if f == file {
                apply(self.files.entry(f).or_default(), off, &data, None);
            } else {
                keep.push((f, off, data));
            }
        }
        self.pending = keep;
    }

    /// A power cut: a random half of the unsynced writes, in random order,
    /// each torn at 4 KiB sectors, reach the disk; the rest are lost.
    pub fn power_cut(&mut self, rng: &mut StdRng) {
        let pending = std::mem::take(&mut self.pending);
        let mut idx: Vec<usize> = (0..pending.len()).filter(|_| rng.gen_bool(0.5)).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.gen_range(0..=i));
        }
        for i in idx {
            let (f, off, data) = &pending[i];
            if let Some(content) = self.files.get_mut(f) {
                apply(content, *off, data, Some(rng));
            }
        }
    }

    /// The files as a process sees them: durable bytes plus every pending
    /// write, in order.
    pub fn visible(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = self.files.clone();
        for (f, off, data) in &self.pending {
            if let Some(content) = files.get_mut(f) {
                apply(content, *off, data, None);
            }
        }
        files
    }

    /// Writes the visible files into `dir` (a fresh data directory).
    pub fn write_to(&self, dir: &Path) {
        std::fs::create_dir_all(dir.join("segments")).unwrap();
        std::fs::create_dir_all(dir.join("spare")).unwrap();
        for (name, data) in &self.visible() {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}

/// Describes the last `n` recorded operations (for debugging a failure).
pub fn describe_ops(ops: &[IoOp], from: usize, to: usize) -> String {
    let mut out = String::new();
    for (k, op) in ops.iter().enumerate().take(to).skip(from) {
        let d = match op {
            IoOp::Write { file, offset, data } => format!(
                "write {file} @{offset} +{} kind {}",
                data.len(),
                data.get(4).copied().unwrap_or(0)
            ),
            other => format!("{other:?}"),
        };
        out.push_str(&format!("op {k}: {d}\n"));
    }
    out
}

/// The last flush acknowledged at or before `cut` (0 if none): every write
/// before it must survive a cut at `cut`.
pub fn durable_at(acks: &[usize], cut: usize) -> usize {
    acks.iter()
        .copied()
        .filter(|&a| a <= cut)
        .max()
        .unwrap_or(0)
}

/// Checks what a block reads after a cut at `cut`: its value last written
/// before `durable_at` (0 if none), or one written between then and the
/// cut. `hist` is the block's (op index, value) writes in order; the error
/// says which values were allowed.
pub fn check_block(
    hist: &[(usize, u64)],
    durable_at: usize,
    cut: usize,
    got: u64,
) -> Result<(), String> {
    let flushed = hist
        .iter()
        .filter(|h| h.0 < durable_at)
        .map(|h| h.1)
        .next_back()
        .unwrap_or(0);
    let later: Vec<u64> = hist
        .iter()
        .filter(|h| h.0 >= durable_at && h.0 <= cut)
        .map(|h| h.1)
        .collect();
    if got == flushed || later.contains(&got) {
        Ok(())
    } else {
        Err(format!(
            "reads seq {got}; flushed {flushed}, later {later:?}"
        ))
    }
}
