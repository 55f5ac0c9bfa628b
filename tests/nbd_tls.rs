//! NBD over TLS (STARTTLS with X.509) against a real `blockd serve`:
//! qemu-io, qemu-img and nbdinfo over TCP and the Unix socket with
//! certificates made by openssl; the FORCEDTLS rules byte by byte (every
//! option but STARTTLS and ABORT refused with ERR_TLS_REQD, EXPORT_NAME
//! closing, STARTTLS with data or twice refused); the optional mode serving
//! plaintext clients and forgetting negotiated state at the upgrade; client
//! certificates; failed and stalled TLS handshakes; bad TLS configuration.

mod common;
mod tls_common;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tls_common::*;

const OPT_STARTTLS: u32 = 5;
const OPT_INFO: u32 = 6;
const ERR_POLICY: u32 = (1 << 31) + 2;
const ERR_TLS_REQD: u32 = (1 << 31) + 5;

fn setup(d: &Path) {
    blockd(d, &["volume", "create", "v", "--size", "16M"]);
}

/// Serves with the server certificate and `extra` arguments.
fn serve_tls(c: &Certs, extra: &[&str]) -> Serve {
    let mut args = vec![
        "--nbd-tls-cert",
        c.server_cert.to_str().unwrap(),
        "--nbd-tls-key",
        c.server_key.to_str().unwrap(),
    ];
    args.extend(extra);
    Serve::with(setup, &args)
}

/// qemu's image options for export `v` over TCP with TLS credentials
/// from `dir`, and the matching `--object`.
fn qemu_tls(s: &Serve, dir: &Path) -> (String, String) {
    let (host, port) = s.tcp.rsplit_once(':').unwrap();
    (
        format!(
            "tls-creds-x509,id=tls0,endpoint=client,dir={}",
            dir.display()
        ),
        format!("driver=nbd,host={host},port={port},export=v,tls-creds=tls0"),
    )
}

fn tls_uri(s: &Serve, dir: &Path) -> String {
    format!("nbds://{}/v?tls-certificates={}", s.tcp, dir.display())
}

fn tls_unix_uri(s: &Serve, dir: &Path) -> String {
    format!(
        "nbds+unix:///v?socket={}&tls-certificates={}",
        s.socket.display(),
        dir.display()
    )
}

/// A rustls client session over an NBD connection that got STARTTLS's ACK,
/// trusting the test CA, with the client certificate when `with_cert`.
fn upgrade(
    r: Raw,
    c: &Certs,
    with_cert: bool,
) -> Raw<rustls::StreamOwned<rustls::ClientConnection, UnixStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&c.ca).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        b.with_client_auth_cert(
            vec![CertificateDer::from_pem_file(&c.client_cert).unwrap()],
            PrivateKeyDer::from_pem_file(&c.client_key).unwrap(),
        )
        .unwrap()
    } else {
        b.with_no_client_auth()
    };
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    Raw {
        s: rustls::StreamOwned::new(conn, r.s),
    }
}

/// Sends STARTTLS and expects its ACK.
fn starttls(r: &mut Raw) {
    r.send_opt(OPT_STARTTLS, &[]);
    let rep = r.opt_replies();
    assert_eq!((rep[0].option, rep[0].reply), (OPT_STARTTLS, REP_ACK));
}

#[test]
fn qemu_and_libnbd_over_tls() {
    let c = certs();
    let s = serve_tls(&c, &[]);
    assert!(s.wait_log("NBD STARTTLS on", Duration::from_secs(10)));
    let (obj, opts) = qemu_tls(&s, &c.trust);
    // Patterned writes (plain, FUA, aio with flush, zeroes), read back.
    let image = ["--object", obj.as_str(), "--image-opts", opts.as_str()];
    ok(
        "qemu-io",
        &qemu_io_args(
            &image,
            &[
                "write -P 0x5a 0 1M",
                "write -P 0x3c -f 1M 512k",
                "aio_write -P 0x11 2M 256k",
                "aio_flush",
                "write -z 4M 1M",
                "flush",
            ],
        ),
    );
    let out = ok(
        "qemu-io",
        &qemu_io_args(
            &image,
            &[
                "read -P 0x5a 0 1M",
                "read -P 0x3c 1M 512k",
                "read -P 0x11 2M 256k",
                "read -P 0 4M 1M",
            ],
        ),
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    // A converted image round trip, compared by qemu-img.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    std::fs::write(&src, pattern(16 << 20, 7)).unwrap();
    ok(
        "qemu-img",
        &[
            "convert",
            "-n",
            "--object",
            &obj,
            "-f",
            "raw",
            "--target-image-opts",
            src.to_str().unwrap(),
            &opts,
        ],
    );
    let target = format!("json:{{\"file\":{{{}}}}}", {
        let (host, port) = s.tcp.rsplit_once(':').unwrap();
        format!(
            "\"driver\":\"nbd\",\"host\":\"{host}\",\"port\":\"{port}\",\"export\":\"v\",\"tls-creds\":\"tls0\""
        )
    });
    ok(
        "qemu-img",
        &[
            "compare",
            "--object",
            &obj,
            "-f",
            "raw",
            "-F",
            "raw",
            src.to_str().unwrap(),
            &target,
        ],
    );
    // libnbd over TCP and over the Unix socket reports TLS and the size.
    for uri in [tls_uri(&s, &c.trust), tls_unix_uri(&s, &c.trust)] {
        let info = ok("nbdinfo", &[&uri]);
        assert!(info.contains("with TLS"), "{uri}: {info}");
        assert!(info.contains("export-size: 16777216"), "{uri}: {info}");
    }
    // A plaintext client is refused (FORCEDTLS is the default with a
    // certificate).
    let plain = run("nbdinfo", &[&s.tcp_uri("v")]);
    assert!(!plain.status.success());
}

#[test]
fn forced_tls_rules() {
    let c = certs();
    let s = serve_tls(&c, &[]);
    let mut r = Raw::connect(&s.socket);
    // Everything but STARTTLS and ABORT: ERR_TLS_REQD, also unknown and
    // malformed options; the connection stays in sync.
    for (opt, payload) in [
        (OPT_LIST, vec![]),
        (OPT_INFO, Raw::go_payload("v", &[])),
        (OPT_GO, Raw::go_payload("v", &[])),
        (OPT_STRUCTURED, vec![]),
        (OPT_LIST_META, Raw::meta_payload("v", &[])),
        (999, vec![1, 2, 3]),
        (OPT_LIST, b"junk".to_vec()),
    ] {
        r.send_opt(opt, &payload);
        let rep = r.opt_replies();
        assert_eq!(
            (rep[0].option, rep[0].reply),
            (opt, ERR_TLS_REQD),
            "{rep:?}"
        );
    }
    // STARTTLS with data is malformed.
    r.send_opt(OPT_STARTTLS, b"x");
    assert_eq!(r.opt_replies()[0].reply, ERR_INVALID);
    starttls(&mut r);
    let mut t = upgrade(r, &c, false);
    // Over TLS: a second STARTTLS is invalid, nothing is ERR_TLS_REQD.
    t.send_opt(OPT_STARTTLS, &[]);
    assert_eq!(t.opt_replies()[0].reply, ERR_INVALID);
    t.send_opt(OPT_LIST, &[]);
    let list = t.opt_replies();
    assert!(list.iter().any(|x| x.reply == REP_SERVER), "{list:?}");
    t.send_opt(999, &[]);
    assert_eq!(t.opt_replies()[0].reply, ERR_UNSUP);
    // Transmission over TLS: write, read back, disconnect.
    let (size, _) = t.go("v", true);
    assert_eq!(size, 16 << 20);
    let data = pattern(256 << 10, 3);
    t.request(CMD_WRITE, 0, 1, 4096, data.len() as u32, &data);
    let w = t.reply(0).unwrap();
    assert_eq!((w.cookie, Raw::errno_of(&w)), (1, 0));
    t.request(CMD_READ, 0, 2, 4096, data.len() as u32, &[]);
    let mut got = Vec::new();
    loop {
        let ch = t.reply(0).unwrap();
        assert_eq!((ch.cookie, Raw::errno_of(&ch)), (2, 0));
        if ch.ty == 1 {
            got.extend_from_slice(&ch.payload[8..]);
        }
        if ch.flags & 1 != 0 {
            break;
        }
    }
    assert!(got == data, "data read back over TLS differs");
    t.request(2, 0, 3, 0, 0, &[]);
    // EXPORT_NAME before STARTTLS: no error reply exists, so it closes.
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_EXPORT_NAME, b"v");
    assert!(r.closed_within(Duration::from_secs(30)));
    // ABORT before STARTTLS is still answered.
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_ABORT, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
}

#[test]
fn optional_tls_serves_both_and_forgets_state_at_upgrade() {
    let c = certs();
    let s = serve_tls(&c, &["--nbd-tls", "allow"]);
    let plain = ok("nbdinfo", &[&s.tcp_uri("v")]);
    assert!(plain.contains("without TLS"), "{plain}");
    let tls = ok("nbdinfo", &[&tls_uri(&s, &c.trust)]);
    assert!(tls.contains("with TLS"), "{tls}");
    // Structured replies negotiated before STARTTLS are forgotten: after
    // the upgrade, a READ gets a simple reply.
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_STRUCTURED, &[]);
    assert_eq!(r.opt_replies()[0].reply, REP_ACK);
    starttls(&mut r);
    let mut t = upgrade(r, &c, false);
    t.go("v", false);
    t.request(CMD_READ, 0, 9, 0, 4096, &[]);
    let rep = t.reply(4096).unwrap();
    assert!(!rep.structured, "structured reply survived STARTTLS");
    assert_eq!((rep.cookie, rep.error, rep.payload.len()), (9, 0, 4096));
}

#[test]
fn client_certificates_are_checked() {
    let c = certs();
    let ca = c.ca.to_str().unwrap().to_string();
    let s = serve_tls(&c, &["--nbd-tls-client-ca", &ca]);
    // libnbd and qemu with the client certificate connect and do I/O.
    let info = ok("nbdinfo", &[&tls_uri(&s, &c.client)]);
    assert!(info.contains("with TLS"), "{info}");
    let (obj, opts) = qemu_tls(&s, &c.client);
    let image = ["--object", obj.as_str(), "--image-opts", opts.as_str()];
    let out = ok(
        "qemu-io",
        &qemu_io_args(&image, &["write -P 0x77 0 64k", "read -P 0x77 0 64k"]),
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    // Without one they are refused, and the server says why.
    let no = run("nbdinfo", &[&tls_uri(&s, &c.trust)]);
    assert!(
        !no.status.success(),
        "a client without a certificate connected"
    );
    let (obj, opts) = qemu_tls(&s, &c.trust);
    let image = ["--object", obj.as_str(), "--image-opts", opts.as_str()];
    let no = run("qemu-io", &qemu_io_args(&image, &["read 0 4k"]));
    assert!(!no.status.success());
    assert!(s.wait_log("TLS handshake failed", Duration::from_secs(10)));
    // The raw client with its certificate gets through.
    let mut r = Raw::connect(&s.socket);
    starttls(&mut r);
    let mut t = upgrade(r, &c, true);
    assert_eq!(t.go("v", false).0, 16 << 20);
}

#[test]
fn failed_and_stalled_tls_handshakes_leave_the_server_up() {
    let c = certs();
    let s = serve_tls(&c, &["--nbd-handshake-timeout", "2"]);
    // Garbage instead of a ClientHello: closed.
    let mut r = Raw::connect(&s.socket);
    starttls(&mut r);
    r.s.write_all(&[0x42; 64]).unwrap();
    assert!(r.closed_within(Duration::from_secs(30)));
    assert!(s.wait_log("TLS handshake failed", Duration::from_secs(10)));
    // Silence after the ACK: the handshake timeout closes it.
    let mut r = Raw::connect(&s.socket);
    starttls(&mut r);
    assert!(r.closed_within(Duration::from_secs(30)));
    assert!(s.wait_log("handshake timed out", Duration::from_secs(10)));
    // A client hanging up mid-handshake.
    let mut r = Raw::connect(&s.socket);
    starttls(&mut r);
    r.s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    drop(r);
    // Still serving.
    let info = ok("nbdinfo", &[&tls_unix_uri(&s, &c.trust)]);
    assert!(info.contains("with TLS"), "{info}");
    // No key material in the log.
    assert!(!s.log().iter().any(|l| l.contains("PRIVATE KEY")));
}

#[test]
fn starttls_without_a_certificate_is_refused_by_policy() {
    let s = Serve::with(setup, &[]);
    let mut r = Raw::connect(&s.socket);
    r.send_opt(OPT_STARTTLS, &[]);
    assert_eq!(r.opt_replies()[0].reply, ERR_POLICY);
    // Plaintext goes on.
    assert_eq!(r.go("v", false).0, 16 << 20);
    let mut b = [0u8; 1];
    r.s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(r.s.read(&mut b).is_err(), "unexpected bytes after GO");
}

#[test]
fn bad_tls_configuration_is_a_clear_error() {
    let c = certs();
    let (_t, d) = data_dir();
    setup(&d);
    let serve = |extra: &[&str]| {
        let mut args = vec![
            "--data-dir",
            d.to_str().unwrap(),
            "serve",
            "--api-listen",
            "",
            "--nbd-listen",
            "127.0.0.1:0",
        ];
        args.extend(extra);
        run(bin(), &args)
    };
    let cert = c.server_cert.to_str().unwrap();
    let key = c.server_key.to_str().unwrap();
    let client_key = c.client_key.to_str().unwrap();
    // A certificate without a key (and the reverse) is a usage error.
    let o = serve(&["--nbd-tls-cert", cert]);
    assert_eq!(o.status.code(), Some(2));
    // A missing key file, and a key that is not the certificate's.
    for (k, needle) in [
        ("/nonexistent/key.pem", "private key"),
        (client_key, "do not make"),
    ] {
        let o = serve(&["--nbd-tls-cert", cert, "--nbd-tls-key", k]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{k}: served anyway");
        assert!(err.contains(needle), "{k}: {err}");
        assert!(!err.contains("PRIVATE KEY"), "{err}");
    }
    // A certificate file holding no certificate.
    let o = serve(&["--nbd-tls-cert", key, "--nbd-tls-key", key]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no certificate"), "{err}");
}
