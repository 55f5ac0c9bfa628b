//! Model-based property tests: random sequences of store operations run
//! against the real engine and against an in-memory model (each object is a
//! `Vec<u8>` of its bytes), and must agree.
//!
//! Operations: create (sizes 64 KiB..2 MiB, not always whole blocks, some
//! compressed), write (unaligned offsets and lengths, some all-zero, some
//! FUA, some longer than one Write record), trim, write_zeroes (punch and
//! not), snapshot, clone, revert, delete, resize (grow), read-compare,
//! block status, flush, checkpoint, reclaim, and close-or-drop followed by
//! `Store::open` on the same directory. Operations the engine must refuse
//! (writes to snapshots, snapshots of snapshots, shrinking) are checked for
//! the right error kind. After every sequence each object reads exactly as
//! its model, `check(false)` is clean, and the same holds after a reopen.
//!
//! Segments are 1 MiB and the dirty-metadata bound small, so segment
//! rolling, automatic checkpoints and cleaning all happen. 64 cases by
//! default; `PROPTEST_CASES` changes that.

use blockd_engine::{ErrorKind, ExtentKind, ObjectId, Store, StoreOptions};
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;

const BS: u64 = 4096;

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 1 << 20,
        cache_bytes: 0,
        dirty_limit_bytes: 64 << 10,
        checkpoint_log_bytes: 3 << 20,
        ..Default::default()
    }
}

/// A position in an object: a fraction of its size, optionally rounded down
/// to a block boundary (with the length rounded up to whole blocks).
#[derive(Clone, Copy, Debug)]
struct Range {
    frac: u32,
    len: u32,
    aligned: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        blocks: u64,
        less_sectors: u64,
        compress: bool,
    },
    Write {
        obj: usize,
        r: Range,
        zero: bool,
        fua: bool,
    },
    Trim {
        obj: usize,
        r: Range,
    },
    Zero {
        obj: usize,
        r: Range,
        punch: bool,
    },
    Snapshot {
        obj: usize,
    },
    Clone {
        obj: usize,
    },
    Revert {
        obj: usize,
        snap: usize,
    },
    Delete {
        obj: usize,
    },
    Resize {
        obj: usize,
        add_sectors: u64,
    },
    Read {
        obj: usize,
        r: Range,
    },
    Status {
        obj: usize,
    },
    Flush,
    Checkpoint,
    Reclaim,
    Reopen {
        close: bool,
    },
}

fn range() -> impl Strategy<Value = Range> {
    let len = prop_oneof![
        5 => 1u32..=16384,
        4 => 1u32..=262144,
        1 => 1u32..=1_300_000,
    ];
    (any::<u32>(), len, any::<bool>()).prop_map(|(frac, len, aligned)| Range { frac, len, aligned })
}

fn create() -> impl Strategy<Value = Op> {
    (
        16u64..=512,
        prop_oneof![3 => Just(0u64), 1 => 1u64..8],
        any::<bool>(),
    )
        .prop_map(|(blocks, less_sectors, compress)| Op::Create {
            blocks,
            less_sectors,
            compress,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let obj = 0usize..64;
    prop_oneof![
        2 => create(),
        20 => (obj.clone(), range(), prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(obj, r, zero, fua)| Op::Write { obj, r, zero, fua }),
        4 => (obj.clone(), range()).prop_map(|(obj, r)| Op::Trim { obj, r }),
        4 => (obj.clone(), range(), any::<bool>()).prop_map(|(obj, r, punch)| Op::Zero { obj, r, punch }),
        4 => obj.clone().prop_map(|obj| Op::Snapshot { obj }),
        3 => obj.clone().prop_map(|obj| Op::Clone { obj }),
        1 => (obj.clone(), obj.clone()).prop_map(|(obj, snap)| Op::Revert { obj, snap }),
        3 => obj.clone().prop_map(|obj| Op::Delete { obj }),
        2 => (obj.clone(), 0u64..2048).prop_map(|(obj, add_sectors)| Op::Resize { obj, add_sectors }),
        6 => (obj.clone(), range()).prop_map(|(obj, r)| Op::Read { obj, r }),
        1 => obj.prop_map(|obj| Op::Status { obj }),
        2 => Just(Op::Flush),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reclaim),
        2 => any::<bool>().prop_map(|close| Op::Reopen { close }),
    ]
}

/// Deterministic non-zero-ish bytes unique to `tag`.
fn fill(tag: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Obj {
    data: Vec<u8>,
    snapshot: bool,
}

struct Runner<'a> {
    dir: &'a Path,
    store: Option<Store>,
    /// Object ids in creation order (indices in ops pick from these).
    ids: Vec<ObjectId>,
    model: HashMap<ObjectId, Obj>,
    tag: u64,
}

impl Runner<'_> {
    fn s(&self) -> &Store {
        self.store.as_ref().expect("store open")
    }

    fn pick(&self, i: usize) -> Option<ObjectId> {
        (!self.ids.is_empty()).then(|| self.ids[i % self.ids.len()])
    }

    /// Byte range of `r` within an object of `size` bytes.
    fn bytes(size: u64, r: Range) -> (u64, u64) {
        let mut off = (u64::from(r.frac) * size) >> 32;
        let mut len = u64::from(r.len);
        if r.aligned {
            off = off / BS * BS;
            len = len.div_ceil(BS) * BS;
        }
        (off, len.clamp(1, size - off))
    }

    fn verify(&self, id: ObjectId, off: u64, len: u64, what: &str) {
        let want = &self.model[&id].data[off as usize..(off + len) as usize];
        let mut got = vec![0u8; len as usize];
        self.s()
            .read(id, off, &mut got)
            .unwrap_or_else(|e| panic!("{what}: read {id} {off}+{len}: {e}"));
        if got != want {
            let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
            panic!(
                "{what}: object {id} differs from the model at byte {} (read {off}+{len})",
                off + at as u64
            );
        }
    }

    fn verify_all(&self, what: &str) {
        let list = self.s().list();
        assert_eq!(list.len(), self.model.len(), "{what}: object count");
        for info in list {
            let m = self
                .model
                .get(&info.id)
                .unwrap_or_else(|| panic!("{what}: unexpected object {}", info.id));
            assert_eq!(
                info.size,
                m.data.len() as u64,
                "{what}: size of {}",
                info.id
            );
            self.verify(info.id, 0, info.size, what);
        }
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Create {
                blocks,
                less_sectors,
                compress,
            } => {
                if self.model.len() >= 12 {
                    return;
                }
                let size = blocks * BS - less_sectors * 512;
                let id = self.s().create_volume(None, size, compress).unwrap().id;
                self.ids.push(id);
                self.model.insert(
                    id,
                    Obj {
                        data: vec![0; size as usize],
                        snapshot: false,
                    },
                );
            }
            Op::Write { obj, r, zero, fua } => {
                let Some(id) = self.pick(obj) else { return };
                let m = &self.model[&id];
                let (off, len) = Self::bytes(m.data.len() as u64, r);
                self.tag += 1;
                let data = if zero {
                    vec![0; len as usize]
                } else {
                    fill(self.tag, len as usize)
                };
                let res = self.s().write(id, off, &data, fua);
                if m.snapshot {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
                    return;
                }
                res.unwrap_or_else(|e| panic!("write {id} {off}+{len}: {e}"));
                let m = self.model.get_mut(&id).unwrap();
                m.data[off as usize..(off + len) as usize].copy_from_slice(&data);
            }
            Op::Trim { obj, r } | Op::Zero { obj, r, .. } => {
                let Some(id) = self.pick(obj) else { return };
                let m = &self.model[&id];
                let (off, len) = Self::bytes(m.data.len() as u64, r);
                let res = match *op {
                    Op::Zero { punch, .. } => self.s().write_zeroes(id, off, len, punch, false),
                    _ => self.s().trim(id, off, len, false),
                };
                if m.snapshot {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
                    return;
                }
                res.unwrap_or_else(|e| panic!("zero/trim {id} {off}+{len}: {e}"));
                let m = self.model.get_mut(&id).unwrap();
                m.data[off as usize..(off + len) as usize].fill(0);
            }
            Op::Snapshot { obj } | Op::Clone { obj } => {
                if self.model.len() >= 12 {
                    return;
                }
                let Some(id) = self.pick(obj) else { return };
                let src = &self.model[&id];
                let snapshot = matches!(op, Op::Snapshot { .. });
                let res = if snapshot {
                    self.s().snapshot(id, None)
                } else {
                    self.s().clone_volume(id, None)
                };
                if snapshot && src.snapshot {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidArgument);
                    return;
                }
                let new = res.unwrap().id;
                let data = src.data.clone();
                self.ids.push(new);
                self.model.insert(new, Obj { data, snapshot });
            }
            Op::Revert { obj, snap } => {
                let (Some(id), Some(sid)) = (self.pick(obj), self.pick(snap)) else {
                    return;
                };
                if self.model[&id].snapshot || !self.model[&sid].snapshot {
                    let e = self.s().revert(id, sid).unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
                    return;
                }
                self.s().revert(id, sid).unwrap();
                let data = self.model[&sid].data.clone();
                self.model.get_mut(&id).unwrap().data = data;
            }
            Op::Delete { obj } => {
                let Some(id) = self.pick(obj) else { return };
                self.s().delete(id).unwrap();
                self.model.remove(&id);
                self.ids.retain(|&x| x != id);
            }
            Op::Resize { obj, add_sectors } => {
                let Some(id) = self.pick(obj) else { return };
                let m = &self.model[&id];
                let size = m.data.len() as u64;
                let new = (size + add_sectors * 512).min(2 << 20).max(size);
                let res = self.s().resize(id, new);
                if m.snapshot {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
                    return;
                }
                res.unwrap();
                if new > 512 {
                    let e = self.s().resize(id, new - 512).unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::Unsupported);
                }
                self.model
                    .get_mut(&id)
                    .unwrap()
                    .data
                    .resize(new as usize, 0);
            }
            Op::Read { obj, r } => {
                let Some(id) = self.pick(obj) else { return };
                let (off, len) = Self::bytes(self.model[&id].data.len() as u64, r);
                self.verify(id, off, len, "read");
                let e = self
                    .s()
                    .read(id, off, &mut vec![0u8; (len + 1) as usize])
                    .map(|_| ());
                if off + len + 1 > self.model[&id].data.len() as u64 {
                    assert_eq!(e.unwrap_err().kind(), ErrorKind::OutOfRange);
                }
            }
            Op::Status { obj } => {
                let Some(id) = self.pick(obj) else { return };
                let data = &self.model[&id].data;
                let ext = self
                    .s()
                    .block_status(id, 0, data.len() as u64, usize::MAX)
                    .unwrap();
                let mut pos = 0;
                for e in ext {
                    assert_eq!(e.offset, pos, "extents are contiguous");
                    let r = &data[e.offset as usize..(e.offset + e.length) as usize];
                    if e.kind != ExtentKind::Data {
                        assert!(r.iter().all(|&b| b == 0), "{e:?} reads as zero");
                    }
                    pos += e.length;
                }
                assert_eq!(pos, data.len() as u64, "extents cover the object");
            }
            Op::Flush => self.s().flush().unwrap(),
            Op::Checkpoint => self.s().checkpoint().unwrap(),
            Op::Reclaim => {
                self.s().reclaim(0.5).unwrap();
            }
            Op::Reopen { close } => {
                let s = self.store.take().unwrap();
                if close {
                    s.close().unwrap();
                } else {
                    drop(s);
                }
                self.store = Some(Store::open(self.dir, opts()).unwrap());
                self.verify_all("after reopen");
            }
        }
    }

    fn finish(&mut self) {
        self.verify_all("end of sequence");
        let r = self.s().check(false).unwrap();
        assert!(r.is_clean(), "check: {r:?}");
        drop(self.store.take());
        self.store = Some(Store::open(self.dir, opts()).unwrap());
        self.verify_all("final reopen");
        let r = self.s().check(false).unwrap();
        assert!(r.is_clean(), "check after reopen: {r:?}");
    }
}

fn run_ops(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Runner {
        dir: dir.path(),
        store: Some(Store::open(dir.path(), opts()).unwrap()),
        ids: Vec::new(),
        model: HashMap::new(),
        tag: 0,
    };
    for (i, op) in ops.iter().enumerate() {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.run(op)));
        if let Err(e) = res {
            eprintln!("failed at op {i}: {op:?}");
            std::panic::resume_unwind(e);
        }
    }
    r.finish();
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn store_matches_model(
        creates in prop::collection::vec(create(), 1..4),
        ops in prop::collection::vec(op(), 1..160),
    ) {
        run_ops(&[creates, ops].concat());
    }
}

/// A fixed sequence touching every operation once, so a plain `cargo test`
/// exercises each path even with `PROPTEST_CASES=1`.
#[test]
fn every_op_once() {
    let r = |frac: u32, len: u32, aligned| Range { frac, len, aligned };
    run_ops(&[
        Op::Create {
            blocks: 300,
            less_sectors: 3,
            compress: true,
        },
        Op::Write {
            obj: 0,
            r: r(1 << 30, 900_000, false),
            zero: false,
            fua: true,
        },
        Op::Snapshot { obj: 0 },
        Op::Zero {
            obj: 0,
            r: r(1 << 31, 20_000, false),
            punch: false,
        },
        Op::Trim {
            obj: 0,
            r: r(1 << 29, 70_000, true),
        },
        Op::Clone { obj: 1 },
        Op::Resize {
            obj: 2,
            add_sectors: 2000,
        },
        Op::Write {
            obj: 2,
            r: r(u32::MAX, 5000, false),
            zero: false,
            fua: false,
        },
        Op::Checkpoint,
        Op::Revert { obj: 0, snap: 1 },
        Op::Read {
            obj: 2,
            r: r(12345, 100_000, false),
        },
        Op::Status { obj: 0 },
        Op::Delete { obj: 0 },
        Op::Flush,
        Op::Reclaim,
        Op::Reopen { close: false },
        Op::Reopen { close: true },
    ]);
}
