//! NBD negotiation (group A) against a real `blockd serve`: real clients
//! (nbdinfo, qemu-nbd --list, qemu-img info), EXPORT_NAME-only clients,
//! unknown and malformed options answered without desync, bad magic and
//! hang-ups, metadata-context edge cases, the default export, the handshake
//! timeout and the connection limit.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn setup(d: &std::path::Path) {
    blockd(d, &["volume", "create", "v", "--size", "16M"]);
    blockd(d, &["volume", "create", "w", "--size", "1M"]);
    blockd(d, &["snapshot", "create", "v", "s"]);
}

#[test]
fn real_clients_list_and_describe() {
    let s = Serve::with(setup, &[]);
    let list = ok("nbdinfo", &["--list", &s.uri("")]);
    for needle in [
        "export=\"v\"",
        "export=\"w\"",
        "export=\"s\"",
        "description: volume",
        "description: snapshot",
    ] {
        assert!(list.contains(needle), "{needle} missing:\n{list}");
    }
    let q = ok("qemu-nbd", &["--list", "-k", s.socket.to_str().unwrap()]);
    assert!(
        q.contains("exports available: 3") && q.contains("export: 'v'"),
        "{q}"
    );
    let info = ok("qemu-img", &["info", "--output=json", &s.tcp_uri("v")]);
    assert!(info.contains("16777216"), "{info}");
    let one = ok("nbdinfo", &["--json", &s.uri("w")]);
    assert!(one.contains("\"export-size\": 1048576"), "{one}");
    // No default export unless asked for.
    let o = run("nbdinfo", &[&s.uri("")]);
    assert!(!o.status.success());
    let o = run("nbdinfo", &[&s.uri("nope")]);
    assert!(!o.status.success());
}

#[test]
fn default_export() {
    let s = Serve::with(setup, &["--default-export", "w"]);
    let info = ok("nbdinfo", &["--json", &s.uri("")]);
    assert!(info.contains("\"export-size\": 1048576"), "{info}");
    let list = ok("nbdinfo", &["--list", &s.uri("")]);
    assert!(list.contains("export=\"\""), "{list}");
}

#[test]
fn export_name_only_client() {
    let s = Serve::with(setup, &[]);
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_EXPORT_NAME, b"w");
    let mut b = [0u8; 10];
    std::io::Read::read_exact(&mut r.s, &mut b).unwrap();
    assert_eq!(u64::from_be_bytes(b[..8].try_into().unwrap()), 1 << 20);
    let flags = u16::from_be_bytes([b[8], b[9]]);
    assert_eq!(flags & 1, 1);
    r.request(1, 0, 1, 0, 4, b"abcd");
    assert_eq!(r.reply(0).unwrap().error, 0);
    r.request(0, 0, 2, 0, 4, &[]);
    let c = r.reply(4).unwrap();
    assert_eq!((c.cookie, c.error, &c.payload[..]), (2, 0, &b"abcd"[..]));
    // An unknown export name closes the connection (no error reply exists).
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_EXPORT_NAME, b"nope");
    assert!(r.closed_within(Duration::from_secs(30)));
}

#[test]
fn unknown_and_malformed_options() {
    let s = Serve::with(setup, &[]);
    let mut r = Raw::connect(&s.socket);
    // Unknown options with payloads: ERR_UNSUP (EXTENDED_HEADERS is
    // covered by tests/nbd_extended.rs).
    for (opt, payload) in [(999u32, vec![7u8; 100]), (4, vec![1, 2, 3])] {
        r.send_opt(opt, &payload);
        let rep = r.opt_replies();
        assert_eq!((rep[0].option, rep[0].reply), (opt, ERR_UNSUP));
    }
    // STARTTLS without a certificate configured: ERR_POLICY (NOTLS mode;
    // tests/nbd_tls.rs covers the rest).
    r.send_opt(5, &[]);
    let rep = r.opt_replies();
    assert_eq!((rep[0].option, rep[0].reply), (5, ERR_UNSUP + 1));
    // LIST with data.
    r.send_opt(OPT_LIST, b"junk");
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    // GO whose name overruns the option.
    let mut go = Raw::go_payload("v", &[]);
    go[3] = 50;
    r.send_opt(OPT_GO, &go);
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    // GO with a truncated info list.
    let go = Raw::go_payload("v", &[3]);
    r.send_opt(OPT_GO, &go[..go.len() - 1]);
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    // 4096-byte names are looked up; 4097 is too big.
    let n4096 = "n".repeat(4096);
    r.send_opt(OPT_GO, &Raw::go_payload(&n4096, &[]));
    assert_eq!(r.opt_replies()[0].reply, ERR_UNKNOWN);
    r.send_opt(OPT_GO, &Raw::go_payload(&(n4096 + "n"), &[]));
    assert_eq!(r.opt_replies()[0].reply, ERR_TOO_BIG);
    // Meta contexts before structured replies are refused.
    r.send_opt(OPT_LIST_META, &Raw::meta_payload("v", &[]));
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    // Still in sync: LIST works.
    r.send_opt(OPT_LIST, &[]);
    let rep = r.opt_replies();
    assert_eq!(rep.iter().filter(|x| x.reply == REP_SERVER).count(), 3);
    assert_eq!(rep.last().unwrap().reply, REP_ACK);
    // Meta-context edge cases.
    r.send_opt(OPT_STRUCTURED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    r.send_opt(OPT_LIST_META, &Raw::meta_payload("v", &[]));
    let rep = r.opt_replies();
    assert_eq!(rep[0].reply, REP_META);
    assert_eq!(&rep[0].data[4..], b"base:allocation");
    r.send_opt(OPT_LIST_META, &Raw::meta_payload("v", &["base:"]));
    assert_eq!(r.opt_replies()[0].reply, REP_META);
    r.send_opt(
        OPT_SET_META,
        &Raw::meta_payload("v", &["qemu:dirty-bitmap:x", "foo:bar"]),
    );
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    r.send_opt(
        OPT_SET_META,
        &Raw::meta_payload("nope", &["base:allocation"]),
    );
    assert_eq!(r.opt_replies()[0].reply, ERR_UNKNOWN);
    let mut bad = Raw::meta_payload("v", &["base:allocation"]);
    bad.push(0);
    r.send_opt(OPT_SET_META, &bad);
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    // Context set for another export does not apply: BLOCK_STATUS is EINVAL.
    r.send_opt(OPT_SET_META, &Raw::meta_payload("w", &["base:allocation"]));
    let rep = r.opt_replies();
    assert_eq!(rep[0].reply, REP_META);
    assert_eq!(u32::from_be_bytes(rep[0].data[..4].try_into().unwrap()), 1);
    r.send_opt(OPT_GO, &Raw::go_payload("v", &[1, 2, 3]));
    let rep = r.opt_replies();
    assert_eq!(rep.last().unwrap().reply, REP_ACK);
    assert!(rep
        .iter()
        .any(|x| x.reply == REP_INFO && x.data[..2] == [0, 2]));
    r.request(7, 0, 5, 0, 4096, &[]);
    let c = r.reply(0).unwrap();
    assert_eq!(Raw::errno_of(&c), EINVAL);
    // Option of length 2^32-1: refused and closed, server still up.
    let mut r = Raw::connect(&s.socket);
    r.send_opt_raw(OPT_LIST, u32::MAX, &[]);
    assert_eq!(r.opt_reply().unwrap().reply, ERR_TOO_BIG);
    assert!(r.closed_within(Duration::from_secs(30)));
    // ABORT: ACK, then close.
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_ABORT, &[]);
    assert_eq!(r.opt_reply().unwrap().reply, REP_ACK);
    assert!(r.closed_within(Duration::from_secs(30)));
    // Bad option magic closes.
    let mut r = Raw::connect(&s.socket);
    std::io::Write::write_all(&mut r.s, &[0u8; 16]).unwrap();
    assert!(r.closed_within(Duration::from_secs(30)));
    // Hang-up in the middle of an option.
    let mut r = Raw::connect(&s.socket);
    r.send_opt_raw(OPT_GO, 100, b"\0\0\0\x01v");
    drop(r);
    // Bad client flags close.
    let mut st = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    let mut g = [0u8; 18];
    std::io::Read::read_exact(&mut st, &mut g).unwrap();
    std::io::Write::write_all(&mut st, &0x80u32.to_be_bytes()).unwrap();
    let mut r = Raw { s: st };
    assert!(r.closed_within(Duration::from_secs(30)));
    // After all that, real clients still work.
    ok("nbdinfo", &[&s.uri("v")]);
}

#[test]
fn handshake_timeout_and_connection_limit() {
    let s = Serve::with(
        setup,
        &["--nbd-handshake-timeout", "1", "--nbd-max-connections", "2"],
    );
    // An idle handshake is closed by the server.
    let mut idle = Raw::connect(&s.socket);
    assert!(idle.closed_within(Duration::from_secs(60)));
    // Two connections in transmission; a third is closed at once.
    let mut a = Raw::connect(&s.socket);
    a.go("v", true);
    let mut b = Raw::connect(&s.socket);
    b.go("w", false);
    let mut c = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut g = [0u8; 18];
    assert!(
        std::io::Read::read_exact(&mut c, &mut g).is_err(),
        "third connection served"
    );
    // The first two still work; after one leaves, a new one is served.
    a.request(0, 0, 1, 0, 512, &[]);
    assert_eq!(Raw::errno_of(&a.reply(0).unwrap()), 0);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        if std::io::Read::read_exact(&mut c, &mut g).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
