//! NBD data scenarios (group B) against a real `blockd serve`: qemu-io
//! patterned I/O with verification (write -z, discard, aio + flush, FUA,
//! unaligned, last partial block, large offsets), qemu-img convert round
//! trips checked with qemu-img compare, nbdcopy both ways (-C 4), exact
//! nbdinfo --map / qemu-img map, and sparse imports staying small.

mod common;
use common::*;
use std::path::Path;

fn qemu_io(uri: &str, cmds: &[&str]) -> String {
    let mut args = qemu_io_args(&["-f", "raw"], cmds);
    args.push(uri);
    let out = ok("qemu-io", &args);
    assert!(
        !out.contains("verification failed") && !out.contains("failed:"),
        "qemu-io {cmds:?}:\n{out}"
    );
    out
}

/// Parses `nbdinfo --map` into (offset, length, type).
fn map(uri: &str) -> Vec<(u64, u64, u32)> {
    ok("nbdinfo", &["--map", uri])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn qemu_io_patterns() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "v", "--size", "64M"]);
            // 1 MiB + 512: the last block is partial.
            blockd(d, &["volume", "create", "odd", "--size", "1049088"]);
            blockd(d, &["volume", "create", "huge", "--size", "1T"]);
        },
        &[],
    );
    let v = s.uri("v");
    qemu_io(
        &v,
        &[
            "write -P 0xa5 0 1M",
            "read -P 0xa5 0 1M",
            "write -P 0x11 1234 5000",
            "read -P 0x11 1234 5000",
            "read -P 0xa5 0 1234",
            "read -P 0xa5 6234 100",
            "write -P 0x5a 2M 2M",
            "write -z 2M 1M",
            "read -P 0 2M 1M",
            "read -P 0x5a 3M 1M",
            "write -z -u 3M 512k",
            "read -P 0 3M 512k",
            "read -P 0x5a 3584k 512k",
            "discard 0 64k",
            "read -P 0 0 64k",
            "read -P 0xa5 64k 64k",
            "aio_write -P 0x21 8M 64k",
            "aio_write -P 0x22 9M 64k",
            "aio_write -P 0x23 10M 1M",
            "aio_flush",
            "read -P 0x21 8M 64k",
            "read -P 0x22 9M 64k",
            "read -P 0x23 10M 1M",
            "write -f -P 0x33 20M 64k",
            "read -P 0x33 20M 64k",
            "flush",
        ],
    );
    // Data written by one qemu-io process is there for the next.
    qemu_io(
        &v,
        &[
            "read -P 0x23 10M 1M",
            "read -P 0x33 20M 64k",
            "read -P 0 0 64k",
        ],
    );
    // The last partial block, and the end.
    let odd = s.uri("odd");
    qemu_io(
        &odd,
        &[
            "write -P 0x77 1048064 1024",
            "read -P 0x77 1048064 1024",
            "write -P 0x78 1049087 1",
            "read -P 0x78 1049087 1",
        ],
    );
    let o = run("qemu-io", &["-f", "raw", "-c", "write 1049088 512", &odd]);
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains("error") || text.contains("Input/output") || !o.status.success(),
        "{text}"
    );
    // Largest offsets of a 1 TiB thin volume.
    qemu_io(
        &s.uri("huge"),
        &[
            "write -P 0x99 1099511623680 4096",
            "read -P 0x99 1099511623680 4096",
            "read -P 0 1099511619584 4096",
        ],
    );
}

fn make_file(path: &Path, size: usize, data: &[(usize, usize, u64)]) -> Vec<u8> {
    let mut buf = vec![0u8; size];
    for &(off, len, seed) in data {
        buf[off..off + len].copy_from_slice(&pattern(len, seed));
    }
    std::fs::write(path, &buf).unwrap();
    buf
}

#[test]
fn convert_and_nbdcopy_round_trips() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "a", "--size", "32M"]);
            blockd(d, &["volume", "create", "b", "--size", "32M"]);
            blockd(d, &["volume", "create", "sparse", "--size", "1G"]);
        },
        &[],
    );
    let t = s.tmp.as_ref().unwrap().path();
    let src = t.join("src.raw");
    make_file(
        &src,
        32 << 20,
        &[
            (0, 1 << 20, 1),
            (5 << 20, 3 << 20, 2),
            (31 << 20, 1 << 20, 3),
            (17 << 20, 777, 4),
        ],
    );
    let srcs = src.to_str().unwrap();
    // qemu-img convert in, compare, convert out, compare.
    ok(
        "qemu-img",
        &["convert", "-n", "-f", "raw", "-O", "raw", srcs, &s.uri("a")],
    );
    ok(
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", srcs, &s.uri("a")],
    );
    let out = t.join("out.raw");
    ok(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &s.uri("a"),
            out.to_str().unwrap(),
        ],
    );
    ok(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "raw",
            srcs,
            out.to_str().unwrap(),
        ],
    );
    // qemu-img convert into a qcow2 and back into volume b.
    let q = t.join("x.qcow2");
    ok(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            &s.uri("a"),
            q.to_str().unwrap(),
        ],
    );
    ok(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "qcow2",
            "-O",
            "raw",
            q.to_str().unwrap(),
            &s.uri("b"),
        ],
    );
    ok(
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", srcs, &s.uri("b")],
    );
    // nbdcopy both ways with 4 connections.
    ok("nbdcopy", &["-C", "4", srcs, &s.uri("b")]);
    let out2 = t.join("out2.raw");
    ok(
        "nbdcopy",
        &["-C", "4", &s.tcp_uri("b"), out2.to_str().unwrap()],
    );
    assert!(std::fs::read(&out2).unwrap() == std::fs::read(&src).unwrap());
    // A mostly empty 1 GiB image converted in stays small.
    let big = t.join("big.raw");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        f.write_all_at(&pattern(65536, 9), 512 << 20).unwrap();
    }
    ok(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "raw",
            "-O",
            "raw",
            big.to_str().unwrap(),
            &s.uri("sparse"),
        ],
    );
    ok(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "raw",
            big.to_str().unwrap(),
            &s.uri("sparse"),
        ],
    );
    let m = map(&s.uri("sparse"));
    let data: u64 = m.iter().filter(|e| e.2 & 1 == 0).map(|e| e.1).sum();
    assert!(
        data <= 1 << 20,
        "sparse image mapped {data} data bytes: {m:?}"
    );
    let mut s = s;
    assert!(s.signal("TERM").success());
    let st: serde_json::Value =
        serde_json::from_str(&blockd(&s.dir, &["stats", "--json"])).unwrap();
    let sparse = st["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "sparse")
        .unwrap();
    assert!(
        sparse["allocated_bytes"].as_u64().unwrap() <= 1 << 20,
        "{sparse}"
    );
}

#[test]
fn maps_are_exact() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "m", "--size", "16M"]);
        },
        &[],
    );
    let u = s.uri("m");
    const HOLE: u32 = 3;
    const ZERO: u32 = 2;
    const DATA: u32 = 0;
    assert_eq!(map(&u), vec![(0, 16 << 20, HOLE)]);
    qemu_io(&u, &["write -P 1 0 64k", "write -P 2 1M 64k"]);
    assert_eq!(
        map(&u),
        vec![
            (0, 65536, DATA),
            (65536, (1 << 20) - 65536, HOLE),
            (1 << 20, 65536, DATA),
            ((1 << 20) + 65536, (15 << 20) - 65536, HOLE)
        ]
    );
    qemu_io(
        &u,
        &[
            "discard 16k 16k",
            "write -z 1M 16k",
            "write -z -u 1040k 16k",
        ],
    );
    assert_eq!(
        map(&u),
        vec![
            (0, 16384, DATA),
            (16384, 16384, HOLE),
            (32768, 32768, DATA),
            (65536, (1 << 20) - 65536, HOLE),
            (1 << 20, 16384, ZERO),
            ((1 << 20) + 16384, 16384, HOLE),
            ((1 << 20) + 32768, 32768, DATA),
            ((1 << 20) + 65536, (15 << 20) - 65536, HOLE)
        ]
    );
    // qemu-img map agrees (qemu merges zero and hole as zero: true).
    let j: serde_json::Value =
        serde_json::from_str(&ok("qemu-img", &["map", "--output=json", "-f", "raw", &u])).unwrap();
    let first = &j.as_array().unwrap()[0];
    assert_eq!(first["start"], 0);
    assert_eq!(first["length"], 16384);
    assert_eq!(first["data"], true);
    let second = &j.as_array().unwrap()[1];
    assert_eq!(second["start"], 16384);
    assert_eq!(second["zero"], true);
    assert_eq!(second["data"], false);
}

#[test]
fn reads_answer_holes_with_hole_chunks() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "h", "--size", "4M"]);
        },
        &[],
    );
    let mut r = Raw::connect(&s.socket);
    r.go("h", true);
    // data [0, 64k), hole [64k, 1M), data [1M, 1M+4k)
    r.request(1, 0, 1, 0, 65536, &pattern(65536, 1));
    assert_eq!(Raw::errno_of(&r.reply(0).unwrap()), 0);
    r.request(1, 0, 2, 1 << 20, 4096, &pattern(4096, 2));
    assert_eq!(Raw::errno_of(&r.reply(0).unwrap()), 0);
    r.request(0, 0, 3, 0, (1 << 20) + 4096, &[]);
    let mut chunks = Vec::new();
    loop {
        let c = r.reply(0).unwrap();
        let off = u64::from_be_bytes(c.payload[..8].try_into().unwrap());
        let len = if c.ty == 2 {
            u32::from_be_bytes(c.payload[8..12].try_into().unwrap()) as u64
        } else {
            c.payload.len() as u64 - 8
        };
        chunks.push((c.ty, off, len));
        if c.ty == 1 {
            let want = if off == 0 {
                pattern(65536, 1)
            } else {
                pattern(4096, 2)
            };
            assert!(c.payload[8..] == want[..]);
        }
        if c.flags & 1 != 0 {
            break;
        }
    }
    chunks.sort_by_key(|c| c.1);
    assert_eq!(
        chunks,
        vec![
            (1, 0, 65536),
            (2, 65536, (1 << 20) - 65536),
            (1, 1 << 20, 4096)
        ]
    );
}

/// Large writes (64 KiB to 32 MiB, the largest NBD request) through real
/// clients, several in flight at once (records batched by the write
/// queue, their aligned middles written `O_DIRECT`), some at unaligned
/// offsets: they read back right over NBD, after a flush and
/// SIGKILL, from the replayed store, and nbdcopy of a 48 MiB file with 4
/// connections round-trips exactly.
#[test]
fn large_writes_read_back_after_kill_and_replay() {
    let (t, d) = data_dir();
    blockd(&d, &["volume", "create", "v", "--size", "128M"]);
    blockd(&d, &["volume", "create", "c", "--size", "48M"]);
    let mut s = Serve::start(&d, &[]);
    let v = s.uri("v");
    let writes = [
        "aio_write -P 0x41 0 64k",
        "aio_write -P 0x42 64k 128k",
        "aio_write -P 0x43 1M 1M",
        "aio_write -P 0x44 2M 4M",
        "aio_write -P 0x45 6M 2M",
        "aio_write -P 0x46 8M 32M",
        "aio_write -P 0x47 40M 16M",
        "aio_write -P 0x48 56M 8M",
        // Unaligned: partial first and last blocks around large middles.
        "aio_write -P 0x49 200000 300000",
        "aio_write -P 0x4a 67109000 5000000",
        "aio_flush",
    ];
    let reads = [
        "read -P 0x41 0 64k",
        "read -P 0x42 64k 128k",
        "read -P 0 192k 3392",
        "read -P 0x49 200000 300000",
        "read -P 0 500000 548576",
        "read -P 0x43 1M 1M",
        "read -P 0x44 2M 4M",
        "read -P 0x45 6M 2M",
        "read -P 0x46 8M 32M",
        "read -P 0x47 40M 16M",
        "read -P 0x48 56M 8M",
        "read -P 0 64M 136",
        "read -P 0x4a 67109000 5000000",
        "read -P 0 72109000 1000",
    ];
    qemu_io(&v, &writes);
    qemu_io(&v, &reads);
    let src = t.path().join("src.raw");
    let want = make_file(
        &src,
        48 << 20,
        &[
            (0, 48 << 20, 7),
            (5 << 20, 3 << 20, 8),
            (33 << 20, 777_777, 9),
        ],
    );
    ok(
        "nbdcopy",
        &["-C", "4", "--flush", src.to_str().unwrap(), &s.uri("c")],
    );
    // The flushes (aio_flush, nbdcopy --flush) made them durable: a
    // SIGKILL now, then replay.
    s.kill9();
    // The large aligned writes were handed to the engine whole and stored
    // as aligned extent Write records (kind 12), payloads 4 KiB-aligned.
    let aligned = aligned_write_records(&d);
    assert!(aligned >= 50, "only {aligned} aligned extent Write records");
    let s = Serve::start(&d, &[]);
    qemu_io(&s.uri("v"), &reads);
    let back = t.path().join("back.raw");
    ok("nbdcopy", &["-C", "4", &s.uri("c"), back.to_str().unwrap()]);
    assert!(
        std::fs::read(&back).unwrap() == want,
        "nbdcopy round trip differs"
    );
    drop(s);
    let out = blockd(&d, &["check"]);
    assert!(out.contains("0 corruption"), "{out}");
}

/// The aligned extent Write records (kind 12) in the log of the store in
/// `dir`, each checked to have its payloads at a 4 KiB-aligned offset.
fn aligned_write_records(dir: &Path) -> usize {
    use engine::decode::{write_payloads, RecordHeader, RecordKind, HEADER_LEN};
    let mut n = 0;
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    for f in segs {
        let bytes = std::fs::read(&f).unwrap();
        let (mut off, mut expect) = (0usize, None);
        // Records in sequence (a reused spare's stale ones end it).
        while let Some(h) = bytes.get(off..).and_then(RecordHeader::decode) {
            let end = off + HEADER_LEN + h.body_len as usize;
            if end > bytes.len() || h.kind == RecordKind::Seal || expect.is_some_and(|e| e != h.seq)
            {
                break;
            }
            expect = Some(h.seq + 1);
            if h.kind == RecordKind::WriteAligned {
                let (_, _, at) = write_payloads(h.kind, &bytes[off + HEADER_LEN..end]).unwrap();
                for (o, _) in at.into_iter().flatten() {
                    assert_eq!((off + HEADER_LEN + o) % 4096, 0, "{}", f.display());
                }
                n += 1;
            }
            off = end;
        }
    }
    n
}
