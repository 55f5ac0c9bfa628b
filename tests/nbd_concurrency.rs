//! NBD concurrency (group D): 100 pipelined requests on one connection
//! answered (possibly out of order) with every cookie once; write on
//! connection A, flush on B, read on C; fio with verify=crc32c at several
//! depths and job counts; a short read sent right behind a write of the
//! same block (one batch) sees that write, and short reads answered on the
//! server's event loop (everything cached) return the right data.

mod common;
use common::*;
use std::collections::HashMap;

#[test]
fn deep_pipeline_on_one_connection() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "p", "--size", "64M"]);
        },
        &[],
    );
    let mut r = Raw::connect(&s.socket);
    r.go("p", true);
    // 100 writes of 64 KiB, sent before reading any reply.
    let n = 100u64;
    let mut w = r.s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut raw = Raw {
            s: w.try_clone().unwrap(),
        };
        for i in 0..n {
            raw.request(1, 0, i, i * 65536, 65536, &pattern(65536, i));
        }
        let _ = std::io::Write::flush(&mut w);
    });
    let mut seen = HashMap::new();
    for _ in 0..n {
        let c = r.reply(0).unwrap();
        assert_eq!(Raw::errno_of(&c), 0);
        assert!(seen.insert(c.cookie, ()).is_none(), "cookie twice");
    }
    sender.join().unwrap();
    // 100 reads pipelined, mixed with block status.
    for i in 0..n {
        r.request(0, 0, 1000 + i, i * 65536, 65536, &[]);
    }
    r.request(7, 0, 5000, 0, 100 * 65536, &[]);
    let mut data: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut done = 0;
    let mut order = Vec::new();
    while done < n + 1 {
        let c = r.reply(0).unwrap();
        assert!(c.structured);
        assert_eq!(Raw::errno_of(&c), 0, "{c:?}");
        if c.ty == 1 {
            let off = u64::from_be_bytes(c.payload[..8].try_into().unwrap());
            let e = data.entry(c.cookie).or_insert_with(|| vec![0u8; 65536]);
            let base = (c.cookie - 1000) * 65536;
            let at = (off - base) as usize;
            e[at..at + c.payload.len() - 8].copy_from_slice(&c.payload[8..]);
        }
        if c.flags & 1 != 0 {
            done += 1;
            order.push(c.cookie);
        }
    }
    for i in 0..n {
        assert!(data[&(1000 + i)] == pattern(65536, i), "read {i} wrong");
    }
    assert!(order.contains(&5000));
}

#[test]
fn multi_conn_visibility() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "m", "--size", "8M"]);
        },
        &[],
    );
    let out = nbdsh(
        &s,
        "m",
        r#"
hs = []
for _ in range(3):
    h = nbd.NBD()
    h.connect_uri(uri)
    assert h.can_multi_conn()
    hs.append(h)
a, b, c = hs
for i in range(20):
    data = bytes([i + 1]) * 65536
    a.pwrite(data, i * 65536)
    b.flush()
    assert c.pread(65536, i * 65536) == data, i
# Zeroes and trims seen too.
a.zero(65536, 0)
b.flush()
assert c.pread(65536, 0) == bytes(65536)
print("ok")
"#,
    );
    assert!(out.contains("ok"));
}

#[test]
fn fio_verify() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "f", "--size", "256M"]);
        },
        &[],
    );
    for (depth, jobs, bs, rw) in [
        (1, 1, "4k", "randwrite"),
        (32, 1, "4k", "randwrite"),
        (16, 4, "64k", "randwrite"),
        (8, 2, "1m", "write"),
    ] {
        let size = 64 << 20;
        let mut args = vec![
            "--name=verify".to_string(),
            "--ioengine=nbd".to_string(),
            format!("--uri={}", s.uri("f")),
            format!("--rw={rw}"),
            format!("--bs={bs}"),
            format!("--iodepth={depth}"),
            format!("--numjobs={jobs}"),
            format!("--size={size}"),
            "--verify=crc32c".to_string(),
            "--do_verify=1".to_string(),
            "--verify_fatal=1".to_string(),
            "--group_reporting".to_string(),
        ];
        if jobs > 1 {
            // Each job its own region so that verification is well defined.
            args.push(format!("--offset_increment={size}"));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ok("fio", &a);
        assert!(out.contains("err= 0"), "{out}");
    }
}

#[test]
fn short_reads_behind_writes_and_from_the_cache() {
    let s = Serve::with(
        |d| {
            blockd(d, &["volume", "create", "p", "--size", "16M"]);
        },
        &[],
    );
    for structured in [false, true] {
        let mut r = Raw::connect(&s.socket);
        r.go("p", structured);
        let seed = |round: u64| round + if structured { 1000 } else { 0 };
        // A write and a read of the same block in one send: the read is
        // queued behind the write, never answered before it from the cache.
        for round in 0..200u64 {
            let block = round % 50;
            let mut b = Vec::new();
            let want = pattern(4096, seed(round));
            push_request(&mut b, CMD_WRITE, 0, 2 * round, block * 4096, 4096, &want);
            push_request(&mut b, CMD_READ, 0, 2 * round + 1, block * 4096, 4096, &[]);
            std::io::Write::write_all(&mut r.s, &b).unwrap();
            let mut got = None;
            for _ in 0..2 {
                let (cookie, d) = next_reply(&mut r, structured, |c| c % 2 == 1);
                if cookie == 2 * round + 1 {
                    got = Some(d);
                } else {
                    assert_eq!((cookie, d.len()), (2 * round, 0));
                }
            }
            assert!(
                got.unwrap() == want,
                "round {round}: the read missed the write"
            );
        }
        // Reads alone, pipelined: blocks 0..50 hold rounds 150..200.
        let mut b = Vec::new();
        for k in 0..50u64 {
            push_request(&mut b, CMD_READ, 0, 10_000 + k, k * 4096, 4096, &[]);
        }
        std::io::Write::write_all(&mut r.s, &b).unwrap();
        for _ in 0..50 {
            let (cookie, d) = next_reply(&mut r, structured, |_| true);
            let k = cookie - 10_000;
            assert!(d == pattern(4096, seed(150 + k)), "block {k}");
        }
    }
}

/// The next reply on `r`: its cookie and, for a read (`is_read(cookie)`),
/// its 4096 bytes of data; any error fails the test. Simple replies do not
/// say whether data follows, hence `is_read`.
fn next_reply(r: &mut Raw, structured: bool, is_read: impl Fn(u64) -> bool) -> (u64, Vec<u8>) {
    if structured {
        let c = r.reply(0).unwrap();
        assert_eq!(Raw::errno_of(&c), 0, "{c:?}");
        // Writes get simple replies; reads one data chunk, the last.
        assert!(!c.structured || c.flags & 1 != 0, "{c:?}");
        let data = if is_read(c.cookie) {
            assert_eq!(c.ty, 1, "{c:?}");
            c.payload[8..].to_vec()
        } else {
            Vec::new()
        };
        return (c.cookie, data);
    }
    let mut h = [0u8; 16];
    std::io::Read::read_exact(&mut r.s, &mut h).unwrap();
    assert_eq!(u32::from_be_bytes(h[..4].try_into().unwrap()), SIMPLE_MAGIC);
    assert_eq!(u32::from_be_bytes(h[4..8].try_into().unwrap()), 0, "error");
    let cookie = u64::from_be_bytes(h[8..].try_into().unwrap());
    let mut data = vec![0u8; if is_read(cookie) { 4096 } else { 0 }];
    std::io::Read::read_exact(&mut r.s, &mut data).unwrap();
    (cookie, data)
}
