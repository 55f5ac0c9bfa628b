//! NBD extended headers (`NBD_OPT_EXTENDED_HEADERS`) against a real
//! `blockd serve`: the option's negotiation rules, then 32-byte requests and
//! replies on a 16 GiB sparse volume (write and read back, holes, 64-bit
//! BLOCK_STATUS_EXT, WRITE_ZEROES and TRIM over 4 GiB, PAYLOAD_LEN misuse,
//! bad flags, flush, a compact request where an extended one is due), and
//! qemu (which asks for extended headers by itself) through a recording
//! proxy that shows it really negotiated them.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OPT_EXTENDED: u32 = 11;
const ERR_EXT_HEADER_REQD: u32 = (1 << 31) + 10;
const EXT_REQ_MAGIC: u32 = 0x21e4_1c71;
const EXT_REPLY_MAGIC: u32 = 0x6e8a_278c;
const FLAG_NO_HOLE: u16 = 1 << 1;
const FLAG_PAYLOAD_LEN: u16 = 1 << 5;
const DONE: u16 = 1;
const T_NONE: u16 = 0;
const T_DATA: u16 = 1;
const T_HOLE: u16 = 2;
const T_STATUS_EXT: u16 = 6;
const T_ERROR: u16 = 0x8001;
const HOLE: u64 = 3;
const DATA: u64 = 0;
const GIB: u64 = 1 << 30;

/// One extended reply chunk.
#[derive(Debug)]
struct Ext {
    flags: u16,
    ty: u16,
    cookie: u64,
    offset: u64,
    payload: Vec<u8>,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}
fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// Extended-header requests and replies over a [`Raw`] connection.
trait ExtClient {
    fn negotiate_extended(&mut self, name: &str) -> u16;
    fn ext_request(
        &mut self,
        cmd: u16,
        flags: u16,
        cookie: u64,
        offset: u64,
        len: u64,
        data: &[u8],
    );
    fn ext_reply(&mut self) -> Option<Ext>;
    /// Every chunk up to the one flagged DONE.
    fn ext_replies(&mut self, cookie: u64) -> Vec<Ext>;
    /// The errno of a one-chunk reply (0 for NONE).
    fn ext_errno(&mut self, cookie: u64) -> u32;
}

impl ExtClient for Raw {
    fn negotiate_extended(&mut self, name: &str) -> u16 {
        self.send_opt(OPT_EXTENDED, &[]);
        assert_eq!(self.opt_replies()[0].reply, REP_ACK);
        self.send_opt(OPT_SET_META, &Raw::meta_payload(name, &["base:allocation"]));
        let r = self.opt_replies();
        assert_eq!(r[0].reply, REP_META, "{r:?}");
        assert_eq!(be32(&r[0].data), 1);
        self.send_opt(OPT_GO, &Raw::go_payload(name, &[]));
        let r = self.opt_replies();
        assert_eq!(r.last().unwrap().reply, REP_ACK, "{r:?}");
        let info = r
            .iter()
            .find(|x| x.reply == REP_INFO && x.data[..2] == [0, 0]);
        let d = &info.unwrap().data;
        u16::from_be_bytes([d[10], d[11]])
    }

    fn ext_request(
        &mut self,
        cmd: u16,
        flags: u16,
        cookie: u64,
        offset: u64,
        len: u64,
        data: &[u8],
    ) {
        let mut b = Vec::with_capacity(32 + data.len());
        b.extend_from_slice(&EXT_REQ_MAGIC.to_be_bytes());
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&cmd.to_be_bytes());
        b.extend_from_slice(&cookie.to_be_bytes());
        b.extend_from_slice(&offset.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(data);
        self.s.write_all(&b).unwrap();
    }

    fn ext_reply(&mut self) -> Option<Ext> {
        let mut h = [0u8; 32];
        self.s.read_exact(&mut h).ok()?;
        assert_eq!(be32(&h), EXT_REPLY_MAGIC, "reply magic: {h:02x?}");
        let len = be64(&h[24..]);
        assert!(len < 64 << 20, "reply length {len}");
        let mut payload = vec![0u8; len as usize];
        self.s.read_exact(&mut payload).ok()?;
        Some(Ext {
            flags: u16::from_be_bytes([h[4], h[5]]),
            ty: u16::from_be_bytes([h[6], h[7]]),
            cookie: be64(&h[8..]),
            offset: be64(&h[16..]),
            payload,
        })
    }

    fn ext_replies(&mut self, cookie: u64) -> Vec<Ext> {
        let mut v = Vec::new();
        loop {
            let c = self.ext_reply().expect("reply chunk");
            assert_eq!(c.cookie, cookie, "{c:?}");
            let done = c.flags & DONE != 0;
            v.push(c);
            if done {
                return v;
            }
        }
    }

    fn ext_errno(&mut self, cookie: u64) -> u32 {
        let r = self.ext_replies(cookie);
        assert_eq!(r.len(), 1, "{r:?}");
        match r[0].ty {
            T_NONE => {
                assert!(r[0].payload.is_empty());
                0
            }
            T_ERROR => {
                let p = &r[0].payload;
                let n = u16::from_be_bytes([p[4], p[5]]) as usize;
                assert_eq!(p.len(), 6 + n, "{r:?}");
                be32(p)
            }
            t => panic!("unexpected chunk type {t}: {r:?}"),
        }
    }
}

/// BLOCK_STATUS_EXT descriptors as (length, status).
fn status(c: &Ext) -> Vec<(u64, u64)> {
    assert_eq!(c.ty, T_STATUS_EXT, "{c:?}");
    let p = &c.payload;
    assert_eq!(be32(p), 1, "context id");
    let n = be32(&p[4..]) as usize;
    assert!(n > 0);
    assert_eq!(p.len(), 8 + 16 * n);
    (0..n)
        .map(|i| (be64(&p[8 + 16 * i..]), be64(&p[16 + 16 * i..])))
        .collect()
}

fn block_status(r: &mut Raw, cookie: u64, offset: u64, len: u64) -> Vec<(u64, u64)> {
    r.ext_request(CMD_BLOCK_STATUS, 0, cookie, offset, len, &[]);
    let c = r.ext_replies(cookie);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].offset, offset, "header offset echoes the request");
    status(&c[0])
}

/// Reads `len` bytes at `offset`; returns the content and the chunk types.
fn read(r: &mut Raw, cookie: u64, offset: u64, len: u64) -> (Vec<u8>, Vec<u16>) {
    r.ext_request(CMD_READ, 0, cookie, offset, len, &[]);
    let mut out = vec![0xeeu8; len as usize];
    let mut covered = 0;
    let mut types = Vec::new();
    for c in r.ext_replies(cookie) {
        assert_eq!(c.offset, offset, "header offset echoes the request: {c:?}");
        types.push(c.ty);
        let at = be64(&c.payload) - offset;
        match c.ty {
            T_DATA => {
                let d = &c.payload[8..];
                out[at as usize..at as usize + d.len()].copy_from_slice(d);
                covered += d.len() as u64;
            }
            T_HOLE => {
                assert_eq!(c.payload.len(), 12);
                let n = be32(&c.payload[8..]) as u64;
                out[at as usize..(at + n) as usize].fill(0);
                covered += n;
            }
            t => panic!("chunk type {t}: {c:?}"),
        }
    }
    assert_eq!(covered, len);
    (out, types)
}

fn big_volume(d: &Path) {
    blockd(d, &["volume", "create", "big", "--size", "16G"]);
    blockd(d, &["volume", "create", "v", "--size", "64M"]);
}

#[test]
fn negotiation_rules() {
    let s = Serve::with(big_volume, &[]);
    let mut r = Raw::connect(&s.socket);
    // A payload is invalid.
    r.send_opt(OPT_EXTENDED, b"x");
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    // After structured replies: allowed; asked again: still ACK.
    r.send_opt(OPT_STRUCTURED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    r.send_opt(OPT_EXTENDED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    r.send_opt(OPT_EXTENDED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    // No downgrade to structured replies.
    r.send_opt(OPT_STRUCTURED, &[]);
    let rep = r.opt_replies();
    assert_eq!(
        (rep[0].option, rep[0].reply),
        (OPT_STRUCTURED, ERR_EXT_HEADER_REQD)
    );
    // Still in sync, and extended headers are on: GO, then 32-byte I/O.
    let flags = r.negotiate_extended("v");
    assert_ne!(flags & (1 << 7), 0, "SEND_DF");
    assert_eq!(flags & (1 << 12), 0, "BLOCK_STATUS_PAYLOAD is not offered");
    r.ext_request(CMD_FLUSH, 0, 1, 0, 0, &[]);
    assert_eq!(r.ext_errno(1), 0);

    // Extended headers without structured replies first, then
    // EXPORT_NAME, which the spec forbids: the server hangs up.
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_EXTENDED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    r.send_opt(OPT_EXPORT_NAME, b"v");
    assert!(r.closed_within(Duration::from_secs(30)));

    // Meta contexts need structured replies or extended headers: the
    // latter is enough.
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_EXTENDED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    r.send_opt(OPT_LIST_META, &Raw::meta_payload("v", &[]));
    let rep = r.opt_replies();
    assert_eq!(
        (rep[0].reply, rep.last().unwrap().reply),
        (REP_META, REP_ACK)
    );

    // Compact clients are untouched: a simple reply after GO.
    let mut r = Raw::connect(&s.socket);
    r.go("v", false);
    r.request(CMD_FLUSH, 0, 5, 0, 0, &[]);
    let c = r.reply(0).unwrap();
    assert_eq!((c.structured, c.cookie, c.error), (false, 5, 0));
}

#[test]
fn extended_transmission_on_a_16g_volume() {
    let s = Serve::with(big_volume, &[]);
    let mut r = Raw::connect(&s.socket);
    r.negotiate_extended("big");
    let mut cookie = 0u64;
    let mut next = || {
        cookie += 1;
        cookie
    };

    // Write and read back (the header offset echoes the request's).
    let a = pattern(8192, 1);
    let c = next();
    r.ext_request(CMD_WRITE, FLAG_PAYLOAD_LEN, c, 0, a.len() as u64, &a);
    let rep = r.ext_replies(c);
    assert_eq!((rep.len(), rep[0].ty, rep[0].offset), (1, T_NONE, 0));
    let b = pattern(4096, 2);
    let c = next();
    r.ext_request(CMD_WRITE, FLAG_PAYLOAD_LEN, c, 1 << 20, 4096, &b);
    assert_eq!(r.ext_errno(c), 0);
    let far = 12 * GIB;
    let f = pattern(4096, 3);
    let c = next();
    r.ext_request(CMD_WRITE, FLAG_PAYLOAD_LEN, c, far, 4096, &f);
    assert_eq!(r.ext_errno(c), 0);
    let (got, types) = read(&mut r, next(), 0, 8192);
    assert_eq!(got, a);
    assert_eq!(types, vec![T_DATA]);
    // A read over data, hole, data: OFFSET_DATA and OFFSET_HOLE chunks.
    let (got, types) = read(&mut r, next(), 4096, (1 << 20) + 4096 - 4096);
    assert_eq!(&got[..4096], &a[4096..]);
    assert!(got[4096..(1 << 20) - 4096].iter().all(|&x| x == 0));
    assert_eq!(&got[(1 << 20) - 4096..], &b[..]);
    assert_eq!(types, vec![T_DATA, T_HOLE, T_DATA], "{types:?}");
    // A hole alone.
    let (got, types) = read(&mut r, next(), 8 * GIB, 1 << 20);
    assert!(got.iter().all(|&x| x == 0));
    assert_eq!(types, vec![T_HOLE]);

    // BLOCK_STATUS_EXT over the whole 16 GiB: 64-bit extent lengths.
    let st = block_status(&mut r, next(), 0, 16 * GIB);
    assert_eq!(
        st,
        vec![
            (8192, DATA),
            ((1 << 20) - 8192, HOLE),
            (4096, DATA),
            (far - (1 << 20) - 4096, HOLE),
            (4096, DATA),
            (16 * GIB - far - 4096, HOLE),
        ]
    );
    assert!(st[3].0 > u64::from(u32::MAX));
    // REQ_ONE: one descriptor, within the request.
    let c = next();
    r.ext_request(CMD_BLOCK_STATUS, 1 << 3, c, 8192, 10 * GIB, &[]);
    assert_eq!(status(&r.ext_replies(c)[0]), vec![((1 << 20) - 8192, HOLE)]);

    // WRITE_ZEROES over 5 GiB from 10 GiB (NO_HOLE: reads as zero, not a
    // hole), over the data at 12 GiB.
    let c = next();
    r.ext_request(CMD_WRITE_ZEROES, FLAG_NO_HOLE, c, 10 * GIB, 5 * GIB, &[]);
    assert_eq!(r.ext_errno(c), 0);
    let (got, _) = read(&mut r, next(), far, 4096);
    assert!(got.iter().all(|&x| x == 0));
    let st = block_status(&mut r, next(), 10 * GIB, 6 * GIB);
    assert_eq!(st, vec![(5 * GIB, 2), (GIB, HOLE)]);
    // TRIM over 6 GiB, from 4 KiB (the data at 1 MiB goes, the first
    // block stays).
    let c = next();
    r.ext_request(CMD_TRIM, 0, c, 4096, 6 * GIB, &[]);
    assert_eq!(r.ext_errno(c), 0);
    let st = block_status(&mut r, next(), 0, 16 * GIB);
    assert_eq!(
        st,
        vec![
            (4096, DATA),
            (10 * GIB - 4096, HOLE),
            (5 * GIB, 2),
            (GIB, HOLE)
        ]
    );
    // Beyond the end.
    let c = next();
    r.ext_request(CMD_TRIM, 0, c, 4096, 16 * GIB, &[]);
    assert_eq!(r.ext_errno(c), EINVAL);
    let c = next();
    r.ext_request(CMD_WRITE_ZEROES, 0, c, 4096, 16 * GIB, &[]);
    assert_eq!(r.ext_errno(c), ENOSPC);

    // A bad flag: an ERROR chunk (extended header), and still in sync.
    let c = next();
    r.ext_request(CMD_TRIM, 0x4000, c, 0, 4096, &[]);
    let rep = r.ext_replies(c);
    assert_eq!((rep[0].ty, rep[0].offset), (T_ERROR, 0));
    assert_eq!(be32(&rep[0].payload), EINVAL);
    // WRITE without PAYLOAD_LEN, as qemu 10 sends it (the spec says the
    // flag MUST be set): the payload follows anyway and is written.
    let c = next();
    r.ext_request(CMD_WRITE, 0, c, 4096, 4096, &a[4096..]);
    assert_eq!(r.ext_errno(c), 0);
    // PAYLOAD_LEN where no payload form is offered: consumed, EINVAL.
    let c = next();
    let mut filter = (4096u64).to_be_bytes().to_vec();
    filter.extend_from_slice(&1u32.to_be_bytes());
    r.ext_request(CMD_BLOCK_STATUS, FLAG_PAYLOAD_LEN, c, 0, 12, &filter);
    assert_eq!(r.ext_errno(c), EINVAL);
    let c = next();
    r.ext_request(CMD_READ, FLAG_PAYLOAD_LEN, c, 0, 5, b"12345");
    assert_eq!(r.ext_errno(c), EINVAL);
    // READ and WRITE stay bounded by the 32 MiB block size.
    let c = next();
    r.ext_request(CMD_READ, 0, c, 0, (32 << 20) + 1, &[]);
    assert_eq!(r.ext_errno(c), EINVAL);
    let c = next();
    r.ext_request(CMD_READ, 0, c, 0, 5 * GIB, &[]);
    assert_eq!(r.ext_errno(c), EINVAL);
    let big = vec![7u8; (32 << 20) + 1];
    let c = next();
    r.ext_request(CMD_WRITE, FLAG_PAYLOAD_LEN, c, 0, big.len() as u64, &big);
    assert_eq!(r.ext_errno(c), EINVAL);
    // Still in sync: the first block is intact.
    let (got, _) = read(&mut r, next(), 0, 4096);
    assert_eq!(got, a[..4096]);
    // Flush: a NONE chunk.
    let c = next();
    r.ext_request(CMD_FLUSH, 0, c, 0, 0, &[]);
    let rep = r.ext_replies(c);
    assert_eq!((rep.len(), rep[0].ty, rep[0].flags), (1, T_NONE, DONE));
    // A compact request where an extended one is due (with 4 more bytes,
    // as the start of a next request, so that 32 bytes arrive): bad magic,
    // hard disconnect.
    r.request(CMD_FLUSH, 0, next(), 0, 0, &[0; 4]);
    assert!(r.closed_within(Duration::from_secs(30)));
    assert!(s.wait_log("bad request magic", Duration::from_secs(10)));

    // A payload too large to drain (over 64 MiB) drops the connection too.
    let mut r = Raw::connect(&s.socket);
    r.negotiate_extended("big");
    r.ext_request(CMD_WRITE, FLAG_PAYLOAD_LEN, 1, 0, 1 << 40, &[]);
    assert!(r.closed_within(Duration::from_secs(30)));
}

/// Recorded sessions: (client to server, server to client) bytes.
type Sessions = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// A Unix-socket proxy recording, per connection, what the client sent and
/// what the server answered.
struct Recorder {
    path: std::path::PathBuf,
    sessions: Sessions,
}

fn pump(mut from: UnixStream, mut to: UnixStream, log: Arc<Mutex<Vec<u8>>>) {
    let mut b = vec![0u8; 1 << 16];
    loop {
        match from.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log.lock().unwrap().extend_from_slice(&b[..n]);
                if to.write_all(&b[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Recorder {
    fn start(server: &Path, path: std::path::PathBuf) -> Recorder {
        let l = UnixListener::bind(&path).unwrap();
        let sessions: Sessions = Arc::default();
        let (server, s2) = (server.to_path_buf(), sessions.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { break };
                let srv = UnixStream::connect(&server).unwrap();
                let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
                let got: Arc<Mutex<Vec<u8>>> = Arc::default();
                let t1 = {
                    let (a, b, l) = (
                        c.try_clone().unwrap(),
                        srv.try_clone().unwrap(),
                        sent.clone(),
                    );
                    std::thread::spawn(move || pump(a, b, l))
                };
                let t2 = {
                    let l = got.clone();
                    std::thread::spawn(move || pump(srv, c, l))
                };
                let s3 = s2.clone();
                std::thread::spawn(move || {
                    let _ = (t1.join(), t2.join());
                    let s = std::mem::take(&mut *sent.lock().unwrap());
                    let g = std::mem::take(&mut *got.lock().unwrap());
                    s3.lock().unwrap().push((s, g));
                });
            }
        });
        Recorder { path, sessions }
    }

    fn uri(&self, export: &str) -> String {
        format!("nbd+unix:///{export}?socket={}", self.path.display())
    }

    /// Waits for `n` finished sessions and returns them.
    fn sessions(&self, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        for _ in 0..500 {
            if self.sessions.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sessions.lock().unwrap().clone()
    }
}

/// Whether the server's side of a session ACKed EXTENDED_HEADERS.
fn server_acked_extended(from_server: &[u8]) -> bool {
    let mut ack = REPLY_MAGIC.to_be_bytes().to_vec();
    ack.extend_from_slice(&OPT_EXTENDED.to_be_bytes());
    ack.extend_from_slice(&REP_ACK.to_be_bytes());
    ack.extend_from_slice(&0u32.to_be_bytes());
    from_server.windows(ack.len()).any(|w| w == ack)
}

#[test]
fn qemu_negotiates_extended_headers() {
    let s = Serve::with(big_volume, &[]);
    let rec = Recorder::start(&s.socket, s.dir.join("rec.sock"));
    let u = rec.uri("v");
    let out = ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 0 64k",
            "-c",
            "write -P 0xa5 1M 64k",
            "-c",
            "write -z 4M 1M",
            "-c",
            "read -P 0x5a 0 64k",
            "-c",
            "read -P 0 64k 960k",
            "-c",
            "read -v 1M 16",
            &u,
        ],
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    assert!(
        out.contains("00100000:  a5 a5 a5 a5 a5 a5 a5 a5 a5 a5 a5 a5 a5 a5 a5 a5"),
        "{out}"
    );
    let sessions = rec.sessions(1);
    let (client, server) = &sessions[0];
    // The client's stream decodes as extended requests, and the server
    // ACKed the option.
    let (n, extended) = nbd_server::fuzzing::client_stream_mode(client);
    assert!(extended && n >= 6, "extended {extended}, {n} requests");
    assert!(server_acked_extended(server));

    // qemu-img map, exact.
    let j: serde_json::Value =
        serde_json::from_str(&ok("qemu-img", &["map", "--output=json", "-f", "raw", &u])).unwrap();
    let got: Vec<(u64, u64, bool, bool)> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["start"].as_u64().unwrap(),
                e["length"].as_u64().unwrap(),
                e["data"].as_bool().unwrap(),
                e["zero"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 64 << 10, true, false),
            (64 << 10, 960 << 10, false, true),
            (1 << 20, 64 << 10, true, false),
            ((1 << 20) + (64 << 10), (3 << 20) - (64 << 10), false, true),
            // write -z without -u: NO_HOLE, allocated zeroes.
            (4 << 20, 1 << 20, true, true),
            (5 << 20, 59 << 20, false, true),
        ],
        "{j}"
    );

    // qemu-img convert out and back in, compared.
    let img = s.dir.join("out.raw");
    let img = img.to_str().unwrap();
    ok("qemu-img", &["convert", "-f", "raw", "-O", "raw", &u, img]);
    ok("qemu-img", &["compare", "-f", "raw", "-F", "raw", img, &u]);
    let back = rec.uri("big");
    ok(
        "qemu-img",
        &["convert", "-n", "-f", "raw", "-O", "raw", img, &back],
    );
    // The 16 GiB target is larger: compare checks that the rest reads as
    // zero.
    ok(
        "qemu-img",
        &["compare", "-f", "raw", "-F", "raw", img, &back],
    );
    // Every qemu session went through extended headers.
    let all = rec.sessions(sessions.len() + 4);
    for (client, server) in &all {
        let (_, extended) = nbd_server::fuzzing::client_stream_mode(client);
        assert!(extended && server_acked_extended(server));
    }
}
