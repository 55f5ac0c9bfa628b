//! Objects created or deleted while the server runs: new connections see
//! them appear and vanish (LIST, GO); a connection open on an object that
//! is deleted stays open, and each of its requests then fails with EIO
//! (the engine answers NotFound for the deleted id). In-process, because
//! the running server holds the data directory's lock against the CLI.

use blockd_nbd_server as nbd_server;
use nbd_server::codec::{self, cmd, opt, rep, RequestHeader};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

struct Client(UnixStream);

impl Client {
    fn connect(path: &std::path::Path) -> Client {
        let mut s = UnixStream::connect(path).unwrap();
        let mut g = [0u8; 18];
        s.read_exact(&mut g).unwrap();
        s.write_all(&3u32.to_be_bytes()).unwrap();
        Client(s)
    }
    fn option(&mut self, option: u32, data: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut b = codec::IHAVEOPT.to_be_bytes().to_vec();
        b.extend_from_slice(&option.to_be_bytes());
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend_from_slice(data);
        self.0.write_all(&b).unwrap();
        let mut out = Vec::new();
        loop {
            let mut h = [0u8; 20];
            self.0.read_exact(&mut h).unwrap();
            let ty = u32::from_be_bytes(h[12..16].try_into().unwrap());
            let len = u32::from_be_bytes(h[16..20].try_into().unwrap());
            let mut d = vec![0u8; len as usize];
            self.0.read_exact(&mut d).unwrap();
            out.push((ty, d));
            if ty == rep::ACK || ty >= 1 << 31 {
                return out;
            }
        }
    }
    fn go(&mut self, name: &str) -> u32 {
        let mut d = (name.len() as u32).to_be_bytes().to_vec();
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&0u16.to_be_bytes());
        self.option(opt::GO, &d).last().unwrap().0
    }
    /// Export names, sorted.
    fn list(&mut self) -> Vec<String> {
        self.option(opt::LIST, &[])
            .into_iter()
            .filter(|(t, _)| *t == rep::SERVER)
            .map(|(_, d)| {
                let n = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
                String::from_utf8(d[4..4 + n].to_vec()).unwrap()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }
    /// Sends a request, returns the simple reply's error (reads data too).
    fn request(&mut self, command: u16, offset: u64, len: u32, data: &[u8]) -> u32 {
        let h = RequestHeader {
            flags: 0,
            command,
            cookie: 1,
            offset,
            length: u64::from(len),
        };
        self.0.write_all(&codec::encode_request(&h)).unwrap();
        self.0.write_all(data).unwrap();
        let mut r = [0u8; 16];
        self.0.read_exact(&mut r).unwrap();
        let err = u32::from_be_bytes(r[4..8].try_into().unwrap());
        if err == 0 && command == cmd::READ {
            let mut d = vec![0u8; len as usize];
            self.0.read_exact(&mut d).unwrap();
        }
        err
    }
}

#[test]
fn objects_appear_and_vanish() {
    let t = tempfile::tempdir().unwrap();
    let store = engine::Store::open(t.path().join("d"), engine::StoreOptions::default()).unwrap();
    let a = store.create_volume(Some("a"), 1 << 20, false).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sock = t.path().join("nbd.sock");
    let server = nbd_server::Server::new(store.clone(), nbd_server::Config::default());
    let l = {
        let _g = rt.enter();
        nbd_server::Server::bind_unix(&sock).unwrap()
    };
    let task = {
        let _g = rt.enter();
        server.serve_unix(l)
    };

    let mut c1 = Client::connect(&sock);
    assert_eq!(c1.go("a"), rep::ACK);
    assert_eq!(c1.request(cmd::WRITE, 0, 4, b"abcd"), 0);

    // Created while running: listed and served to new connections.
    let mut c = Client::connect(&sock);
    assert_eq!(c.list(), vec!["a".to_string()]);
    store.create_volume(Some("b"), 1 << 20, false).unwrap();
    store.snapshot(a.id, Some("snap")).unwrap();
    assert_eq!(c.list(), vec!["a", "b", "snap"]);
    let mut c2 = Client::connect(&sock);
    assert_eq!(c2.go("snap"), rep::ACK);

    // Deleted while running: gone for new connections; the open one stays
    // connected but its requests fail with EIO.
    store.delete(a.id).unwrap();
    assert_eq!(c.list(), vec!["b", "snap"]);
    assert_eq!(c.go("a"), rep::ERR_UNKNOWN);
    assert_eq!(c1.request(cmd::READ, 0, 4, &[]), codec::errno::EIO);
    assert_eq!(c1.request(cmd::WRITE, 0, 4, b"wxyz"), codec::errno::EIO);
    assert_eq!(c1.request(cmd::TRIM, 0, 4096, &[]), codec::errno::EIO);
    // The snapshot taken before the delete still reads the data.
    assert_eq!(c2.request(cmd::READ, 0, 4, &[]), 0);
    assert_eq!(c.go("b"), rep::ACK);

    drop((c, c1, c2));
    rt.block_on(server.shutdown(std::time::Duration::from_secs(10)));
    rt.block_on(task).unwrap();
    store.close().unwrap();
}
