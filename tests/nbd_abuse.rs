//! NBD abuse and durability (group E): out-of-range I/O, unknown commands
//! and flags, zero-length requests, oversized writes (drained, connection
//! kept) and absurd ones (disconnect), malformed commands from libnbd in
//! non-strict mode, clients vanishing mid-payload or mid-reply, DISC with
//! requests in flight, SIGTERM with I/O in flight, and kill -9 after a flush.

mod common;
use common::*;
use std::time::Duration;

fn vol(size: &'static str) -> impl FnOnce(&std::path::Path) {
    move |d| {
        blockd(d, &["volume", "create", "v", "--size", size]);
    }
}

#[test]
fn bad_requests_get_errnos_and_keep_the_connection() {
    let s = Serve::with(vol("1M"), &[]);
    for structured in [false, true] {
        let mut r = Raw::connect(&s.socket);
        r.go("v", structured);
        let expect =
            |r: &mut Raw, cmd: u16, flags: u16, off: u64, len: u32, data: &[u8], errno: u32| {
                r.request(cmd, flags, 42, off, len, data);
                let c = r.reply(0).expect("reply");
                assert_eq!(c.cookie, 42);
                assert_eq!(
                    Raw::errno_of(&c),
                    errno,
                    "cmd {cmd} flags {flags} off {off} len {len} structured {structured}: {c:?}"
                );
            };
        let end = 1u64 << 20;
        expect(&mut r, 0, 0, end, 1, &[], EINVAL); // read past the end
        expect(&mut r, 0, 0, u64::MAX - 1, 4, &[], EINVAL); // wrapping range
        expect(&mut r, 1, 0, end - 2, 4, b"abcd", ENOSPC); // write past the end
        expect(&mut r, 6, 0, end, 4096, &[], ENOSPC); // zero past the end
        expect(&mut r, 4, 0, end, 4096, &[], EINVAL); // trim past the end
        expect(&mut r, 42, 0, 0, 4096, &[], EINVAL); // unknown command
        expect(&mut r, 0, 0x4000, 0, 4096, &[], EINVAL); // unknown flag
        expect(&mut r, 0, 1, 0, 4096, &[], EINVAL); // FUA on read
        expect(&mut r, 1, 2, 0, 4, b"abcd", EINVAL); // NO_HOLE on write (drained)
        expect(&mut r, 3, 0, 0, 4096, &[], EINVAL); // flush with a length
        expect(&mut r, 0, 0, 0, 0, &[], EINVAL); // zero-length read
        expect(&mut r, 1, 0, 0, 0, &[], EINVAL); // zero-length write
        if !structured {
            expect(&mut r, 0, 4, 0, 4096, &[], EINVAL); // DF without structured replies
            expect(&mut r, 7, 0, 0, 4096, &[], EINVAL); // block status without context
        }
        // Oversized write: refused, payload drained, connection kept.
        let big = vec![0xabu8; (32 << 20) + 4096];
        expect(&mut r, 1, 0, 0, big.len() as u32, &big, EINVAL);
        // Still in sync.
        r.request(1, 1, 7, 100, 5, b"hello");
        assert_eq!(Raw::errno_of(&r.reply(0).unwrap()), 0);
        r.request(0, 0, 8, 100, 5, &[]);
        let c = r.reply(5).unwrap();
        if structured {
            assert_eq!(c.ty, 1);
            assert_eq!(&c.payload[8..], b"hello");
        } else {
            assert_eq!(&c.payload[..], b"hello");
        }
        // An absurd write length disconnects.
        r.request(1, 0, 9, 0, u32::MAX, &[]);
        assert!(r.closed_within(Duration::from_secs(30)));
    }
    // A bad request magic disconnects.
    let mut r = Raw::connect(&s.socket);
    r.go("v", false);
    std::io::Write::write_all(&mut r.s, &[0u8; 28]).unwrap();
    assert!(r.closed_within(Duration::from_secs(30)));
    ok("nbdinfo", &[&s.uri("v")]);
}

#[test]
fn libnbd_non_strict_commands() {
    let s = Serve::with(vol("1M"), &[]);
    let out = nbdsh(
        &s,
        "v",
        r#"
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri(uri)
def errno(f):
    try:
        f()
        return 0
    except nbd.Error as e:
        return e.errnum
size = h.get_size()
print("read_past", errno(lambda: h.pread(512, size)))
print("write_past", errno(lambda: h.pwrite(b"x" * 512, size - 256)))
print("trim_past", errno(lambda: h.trim(4096, size)))
print("zero_past", errno(lambda: h.zero(4096, size)))
print("cache_past", errno(lambda: h.cache(4096, size)))
print("bs_past", errno(lambda: h.block_status(4096, size, lambda *a: 0)))
print("read_fua", errno(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA)))
print("read_req_one", errno(lambda: h.pread(512, 0, nbd.CMD_FLAG_REQ_ONE)))
print("write_no_hole", errno(lambda: h.pwrite(b"y" * 512, 0, nbd.CMD_FLAG_NO_HOLE)))
print("big_read", errno(lambda: h.pread(64 << 20, 0)))
print("zero_len_read", errno(lambda: h.pread(0, 0)))
print("cache_ok", errno(lambda: h.cache(4096, 0)))
print("fast_zero_ok", errno(lambda: h.zero(8192, 0, nbd.CMD_FLAG_FAST_ZERO)))
print("df_ok", errno(lambda: h.pread_structured(8192, 0, lambda *a: 0, nbd.CMD_FLAG_DF)))
h.pwrite(b"z" * 512, 512)
assert h.pread(512, 512) == b"z" * 512
print("alive")
"#,
    );
    for (k, v) in [
        ("read_past", 22),
        ("write_past", 28),
        ("trim_past", 22),
        ("zero_past", 28),
        ("cache_past", 22),
        ("bs_past", 22),
        ("read_fua", 22),
        ("read_req_one", 22),
        ("write_no_hole", 22),
        ("big_read", 22),
        ("cache_ok", 0),
        ("fast_zero_ok", 0),
        ("df_ok", 0),
    ] {
        assert!(out.contains(&format!("{k} {v}\n")), "{k} != {v}:\n{out}");
    }
    assert!(out.contains("alive"), "{out}");
}

#[test]
fn vanishing_clients_and_disc_with_requests_in_flight() {
    let s = Serve::with(vol("64M"), &[]);
    // Mid-payload: header of a 1 MiB write, half the data, gone.
    let mut r = Raw::connect(&s.socket);
    r.go("v", true);
    r.request(1, 0, 1, 0, 1 << 20, &vec![0x55u8; 512 << 10]);
    drop(r);
    // Mid-reply: ask for 32 MiB reads and leave without reading.
    let mut r = Raw::connect(&s.socket);
    r.go("v", false);
    for i in 0..8 {
        r.request(0, 0, i, 0, 32 << 20, &[]);
    }
    drop(r);
    // DISC after writes in flight: writes complete, no reply to DISC.
    let mut r = Raw::connect(&s.socket);
    r.go("v", false);
    for i in 0..32u64 {
        r.request(1, 0, i, (1 << 20) + i * 4096, 4096, &pattern(4096, i));
    }
    r.request(2, 0, 99, 0, 0, &[]);
    let mut cookies = Vec::new();
    while let Some(c) = r.reply(0) {
        assert_eq!(c.error, 0);
        cookies.push(c.cookie);
    }
    cookies.sort();
    assert_eq!(cookies, (0..32).collect::<Vec<_>>());
    // Nothing was written by the vanished write; the DISC'd writes are.
    let mut r = Raw::connect(&s.socket);
    r.go("v", false);
    r.request(0, 0, 1, 0, 4096, &[]);
    assert_eq!(r.reply(4096).unwrap().payload, vec![0u8; 4096]);
    for i in 0..32u64 {
        r.request(0, 0, i, (1 << 20) + i * 4096, 4096, &[]);
        assert_eq!(r.reply(4096).unwrap().payload, pattern(4096, i));
    }
    ok("nbdinfo", &[&s.uri("v")]);
}

#[test]
fn sigterm_finishes_io_and_kill9_keeps_flushed_data() {
    let (t, d) = data_dir();
    blockd(&d, &["volume", "create", "v", "--size", "64M"]);
    let mut s = Serve::start(&d, &[]);
    // Flushed writes survive kill -9.
    ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x61 0 4M",
            "-c",
            "write -f -P 0x62 8M 64k",
            "-c",
            "flush",
            &s.uri("v"),
        ],
    );
    s.kill9();
    let mut s = Serve::start(&d, &[]);
    ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "read -P 0x61 0 4M",
            "-c",
            "read -P 0x62 8M 64k",
            &s.uri("v"),
        ],
    );
    // SIGTERM while a client streams writes: exit 0; every acknowledged
    // write is on disk afterwards.
    let mut r = Raw::connect(&s.socket);
    r.go("v", false);
    for i in 0..64u64 {
        r.request(1, 0, i, (16 << 20) + i * 65536, 65536, &pattern(65536, i));
    }
    let first = r.reply(0).unwrap();
    assert_eq!(first.error, 0);
    let mut acked = vec![first.cookie];
    let st = s.signal("TERM");
    assert!(st.success(), "exit status {st}");
    while let Some(c) = r.reply(0) {
        if c.error == 0 {
            acked.push(c.cookie);
        }
    }
    assert!(s.wait_log("SIGTERM", Duration::from_secs(10)));
    let exported = t.path().join("v.raw");
    blockd(&d, &["export", "v", exported.to_str().unwrap()]);
    let img = std::fs::read(&exported).unwrap();
    for i in acked {
        let o = ((16 << 20) + i * 65536) as usize;
        assert!(
            img[o..o + 65536] == pattern(65536, i)[..],
            "acked write {i} lost"
        );
    }
    assert!(img[..4 << 20].iter().all(|&b| b == 0x61));
    assert!(blockd(&d, &["check"]).contains("0 corruption"));
}
