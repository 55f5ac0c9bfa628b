//! Operations of `blockd serve`'s API listener, black-box: HTTP limits
//! (slowloris and silent clients beside a normal one, idle keep-alive, a
//! slow body, the connection cap), the access log on stderr at the default
//! level (fields, no secrets), and Prometheus `/metrics` after real API
//! requests and NBD I/O (parsed with `prometheus-parse`).

mod api_common;

use api_common::*;
use prometheus_parse::{Scrape, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// `127.0.0.1:PORT` of the API.
fn addr(api: &Api) -> String {
    api.base.trim_start_matches("http://").to_string()
}

/// Reads one HTTP response (head and Content-Length body) from `s`;
/// returns the status and the head.
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut b).expect("read response");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head[9..12].parse().expect("status");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut b).expect("read body");
        assert!(n > 0, "closed mid-body");
        buf.extend_from_slice(&b[..n]);
    }
    (status, head)
}

/// Waits (at most `wait`) for the server to close `s`; returns how long
/// that took, or `None`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut b = [0u8; 4096];
    loop {
        let left = wait.checked_sub(t.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut b) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(t.elapsed()),
            Err(_) if t.elapsed() >= wait => return None,
            Err(_) => continue,
        }
    }
}

/// A client connection the test holds open: slowloris (sends a request
/// head one byte at a time, never finishing it) or silent.
struct Hog {
    s: TcpStream,
    opened: Instant,
    sent: usize,
    slow: bool,
    closed_after: Option<Duration>,
}

/// Never-ending request head for slowloris clients.
fn slow_head(i: usize) -> u8 {
    const START: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n";
    if i < START.len() {
        START[i]
    } else {
        b"X-Slow: yes\r\n"[(i - START.len()) % 13]
    }
}

/// Drives `hogs` every 100 ms (one more byte for slowloris clients) until
/// the server closed them all or `limit` passed.
fn drive_hogs(hogs: &mut [Hog], limit: Duration) {
    let t = Instant::now();
    for h in hogs.iter() {
        h.s.set_nonblocking(true).unwrap();
    }
    while t.elapsed() < limit && hogs.iter().any(|h| h.closed_after.is_none()) {
        for h in hogs.iter_mut().filter(|h| h.closed_after.is_none()) {
            let mut b = [0u8; 1024];
            match h.s.read(&mut b) {
                Ok(0) => {
                    h.closed_after = Some(h.opened.elapsed());
                    continue;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    h.closed_after = Some(h.opened.elapsed());
                    continue;
                }
            }
            if h.slow {
                let _ = h.s.write(&[slow_head(h.sent)]);
                h.sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_hogs(addr: &str, slow: usize, silent: usize) -> Vec<Hog> {
    (0..slow + silent)
        .map(|i| {
            let s = TcpStream::connect(addr).expect("connect");
            let _ = s.set_nodelay(true);
            Hog {
                s,
                opened: Instant::now(),
                sent: 0,
                slow: i < slow,
                closed_after: None,
            }
        })
        .collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[test]
fn slow_and_silent_clients_do_not_starve_a_normal_one() {
    let api = Api::start_args(
        &["--http-header-timeout", "3", "--http-idle-timeout", "30"],
        &[],
    );
    let a = addr(&api);
    let mut hogs = open_hogs(&a, 124, 124);
    let driver = std::thread::spawn(move || {
        drive_hogs(&mut hogs, Duration::from_secs(20));
        hogs
    });
    // A normal client meanwhile: functional answers, promptly.
    std::thread::sleep(Duration::from_millis(300));
    let vol = api.volume("demo", DEMO, 1);
    let mut took = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = api.get(&format!("/v1.1/demo/os-volumes/{vol}"), DEMO);
        took.push(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["volume"]["id"], vol.as_str());
    }
    took.sort();
    println!(
        "normal client beside 248 slow connections: min {:.2} ms, median {:.2} ms, max {:.2} ms",
        secs(took[0]) * 1e3,
        secs(took[10]) * 1e3,
        secs(took[19]) * 1e3
    );
    assert!(took[19] < Duration::from_secs(5), "{took:?}");
    let hogs = driver.join().unwrap();
    for kind in [true, false] {
        let closed: Vec<f64> = hogs
            .iter()
            .filter(|h| h.slow == kind)
            .map(|h| secs(h.closed_after.expect("closed by the server")))
            .collect();
        let min = closed.iter().cloned().fold(f64::MAX, f64::min);
        let max = closed.iter().cloned().fold(0.0, f64::max);
        let what = if kind { "slowloris" } else { "silent" };
        println!("{what} connections closed after {min:.2}-{max:.2} s (3 s header timeout)");
        assert!(min >= 2.5 && max <= 8.0, "{what}: {closed:?}");
    }
    // Slowloris clients kept sending bytes until closed.
    let sent = hogs.iter().filter(|h| h.slow).map(|h| h.sent).min();
    println!("slowloris clients sent at least {sent:?} bytes each");
    assert!(sent.unwrap() > 5);
    assert_eq!(api.get("/v1.1/demo/os-volumes", DEMO).status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let api = Api::start_args(
        &["--http-idle-timeout", "2", "--http-header-timeout", "10"],
        &[],
    );
    let a = addr(&api);
    let mut s = TcpStream::connect(&a).unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // Requests 1 s apart keep the connection open.
    for _ in 0..3 {
        s.write_all(req).unwrap();
        assert_eq!(read_response(&mut s).0, 200);
        std::thread::sleep(Duration::from_secs(1));
    }
    s.write_all(req).unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    let idle = closed_within(&mut s, Duration::from_secs(10)).expect("closed when idle");
    println!(
        "idle keep-alive connection closed after {:.2} s (2 s idle timeout)",
        secs(idle)
    );
    assert!(idle >= Duration::from_millis(1500) && idle <= Duration::from_secs(6));
    // A connection that never sends anything is idle too.
    let mut quiet = TcpStream::connect(&a).unwrap();
    let t = closed_within(&mut quiet, Duration::from_secs(10)).expect("closed");
    assert!(t >= Duration::from_millis(1500), "{t:?}");
}

#[test]
fn a_slow_body_gets_408_and_the_connection_closes() {
    let api = Api::start_args(&["--http-body-timeout", "2"], &[]);
    let a = addr(&api);
    let mut s = TcpStream::connect(&a).unwrap();
    let head = format!(
        "POST /v1.1/demo/os-volumes HTTP/1.1\r\nHost: localhost\r\nX-Auth-Token: {DEMO}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"volume\":"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t = Instant::now();
    let (status, head) = read_response(&mut s);
    let took = t.elapsed();
    println!(
        "slow body answered {status} after {:.2} s (2 s body timeout)",
        secs(took)
    );
    assert_eq!(status, 408, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(took >= Duration::from_millis(1500) && took <= Duration::from_secs(8));
    assert!(closed_within(&mut s, Duration::from_secs(5)).is_some());
    // Whole bodies still work, and nothing was created by the slow one.
    let r = api.get("/v1.1/demo/os-volumes", DEMO);
    assert_eq!(r.json["volumes"].as_array().unwrap().len(), 0);
    api.volume("demo", DEMO, 1);
    assert!(wait_log(&api, |l| l.contains("blockd::access")
        && l.contains("status=408")));
}

#[test]
fn bodies_are_read_under_the_reader_limit() {
    let api = Api::start_args(
        &["--http-max-body-readers", "1", "--http-body-timeout", "2"],
        &[],
    );
    let a = addr(&api);
    // A slow body holds the only reader slot until its deadline.
    let mut slow = TcpStream::connect(&a).unwrap();
    let head = format!(
        "POST /v1.1/demo/os-volumes HTTP/1.1\r\nHost: localhost\r\nX-Auth-Token: {DEMO}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Bodiless requests do not wait for a reader slot.
    assert_eq!(api.get("/v1.1/demo/os-volumes", DEMO).status, 200);
    let t = Instant::now();
    api.volume("demo", DEMO, 1);
    let waited = t.elapsed();
    println!(
        "second body waited {:.2} s for the one reader slot",
        secs(waited)
    );
    assert!(waited >= Duration::from_secs(1), "not limited: {waited:?}");
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_response(&mut slow).0, 408);
}

#[test]
fn connections_past_the_cap_wait_without_harm() {
    let api = Api::start_args(
        &[
            "--http-max-connections",
            "4",
            "--http-header-timeout",
            "2",
            "--http-idle-timeout",
            "2",
        ],
        &[],
    );
    let a = addr(&api);
    let mut hogs = open_hogs(&a, 0, 4);
    std::thread::sleep(Duration::from_millis(300));
    // The fifth connection waits for a slot: the silent ones time out.
    let t = Instant::now();
    let r = api.get("/v1.1/demo/os-volumes", DEMO);
    let waited = t.elapsed();
    println!(
        "request past the cap of 4 answered after {:.2} s",
        secs(waited)
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(waited >= Duration::from_secs(1), "not queued: {waited:?}");
    assert!(waited <= Duration::from_secs(10));
    drive_hogs(&mut hogs, Duration::from_secs(5));
    assert!(hogs.iter().all(|h| h.closed_after.is_some()));
    assert!(api
        .log()
        .iter()
        .any(|l| l.contains("HTTP connection limit reached")));
    for _ in 0..5 {
        assert_eq!(api.get("/v1.1/demo/os-volumes", DEMO).status, 200);
    }
}

#[test]
fn bad_limits_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    for args in [
        &["--http-max-connections", "0"][..],
        &["--http-header-timeout", "0"],
        &["--http-idle-timeout", "x"],
        &["--http-body-timeout", "100000"],
        &["--http-max-body-readers", "0"],
        &["--metrics-listen", "0.0.0.0:0"],
    ] {
        let o = std::process::Command::new(bin())
            .arg("--data-dir")
            .arg(&dir)
            .args(["serve", "--nbd-listen", "", "--api-listen", "127.0.0.1:0"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(args[0]) || err.contains("loopback"),
            "{args:?}: {err}"
        );
    }
}

/// Waits up to 10 s for a log line matching `f`.
fn wait_log(api: &Api, f: impl Fn(&str) -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if api.log().iter().any(|l| f(l)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A minimal NBD client (EXPORT_NAME, simple replies) over the Unix socket.
struct Nbd {
    s: UnixStream,
    cookie: u64,
}

impl Nbd {
    fn connect(api: &Api, export: &str) -> Nbd {
        let mut s = UnixStream::connect(&api.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut g = [0u8; 18];
        s.read_exact(&mut g).unwrap();
        s.write_all(&3u32.to_be_bytes()).unwrap(); // fixed newstyle, no zeroes
        let mut o = Vec::new();
        o.extend_from_slice(b"IHAVEOPT");
        o.extend_from_slice(&1u32.to_be_bytes()); // EXPORT_NAME
        o.extend_from_slice(&(export.len() as u32).to_be_bytes());
        o.extend_from_slice(export.as_bytes());
        s.write_all(&o).unwrap();
        let mut info = [0u8; 10];
        s.read_exact(&mut info).unwrap();
        Nbd { s, cookie: 0 }
    }

    /// Sends a request; returns the reply's error and data (reads only).
    fn request(&mut self, ty: u16, offset: u64, len: u32, data: &[u8]) -> (u32, Vec<u8>) {
        self.cookie += 1;
        let mut r = Vec::new();
        r.extend_from_slice(&0x2560_9513u32.to_be_bytes());
        r.extend_from_slice(&0u16.to_be_bytes());
        r.extend_from_slice(&ty.to_be_bytes());
        r.extend_from_slice(&self.cookie.to_be_bytes());
        r.extend_from_slice(&offset.to_be_bytes());
        r.extend_from_slice(&len.to_be_bytes());
        r.extend_from_slice(data);
        self.s.write_all(&r).unwrap();
        let mut h = [0u8; 16];
        self.s.read_exact(&mut h).unwrap();
        assert_eq!(u32::from_be_bytes(h[..4].try_into().unwrap()), 0x6744_6698);
        let err = u32::from_be_bytes(h[4..8].try_into().unwrap());
        let mut out = Vec::new();
        if ty == 0 && err == 0 {
            out.resize(len as usize, 0);
            self.s.read_exact(&mut out).unwrap();
        }
        (err, out)
    }
}

/// Scrapes `/metrics` at `addr`.
fn scrape(addr: &str) -> Scrape {
    let r = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .expect("GET /metrics");
    assert!(r.content_type().starts_with("text/plain"));
    let text = r.into_string().unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parse metrics")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let hit = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)));
    match hit.map(|x| &x.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(b)) => b
            .iter()
            .find(|c| c.less_than.is_infinite())
            .map_or(0.0, |c| c.count),
        _ => panic!("no sample {name} {labels:?}"),
    }
}

#[test]
fn access_log_and_metrics_follow_requests_and_nbd_io() {
    let api = Api::start_args(&["--metrics-listen", "127.0.0.1:0"], &[]);
    let line = api
        .log()
        .into_iter()
        .find(|l| l.contains("metrics on http://"))
        .expect("metrics address logged");
    let maddr = line
        .split("metrics on http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .trim()
        .to_string();

    // API requests: authenticated, refused, another dialect, a query.
    let vol = api.volume("demo", DEMO, 1);
    let r = api.get("/v1.1/demo/os-volumes?secret_marker=hunter2", DEMO);
    assert_eq!(r.status, 200);
    let request_id = r.header("x-compute-request-id").unwrap().to_string();
    assert_eq!(api.get("/v1.1/demo/os-volumes", "wrong-token").status, 401);
    let basic_header = basic(DEMO_BASIC);
    let d = api.send(
        "GET",
        "/api/storage_volumes",
        &[
            ("Authorization", &basic_header),
            ("Accept", "application/json"),
        ],
        None,
    );
    assert_eq!(d.status, 200, "{}", d.text);

    // NBD: writes and reads, and a refused read past the end.
    let mut n = Nbd::connect(&api, &vol);
    let data = vec![0xa5u8; 65536];
    assert_eq!(n.request(1, 0, 65536, &data).0, 0);
    assert_eq!(n.request(3, 0, 0, &[]).0, 0); // flush
    let (err, back) = n.request(0, 0, 65536, &[]);
    assert_eq!((err, back == data), (0, true));
    assert_eq!(n.request(0, 4096, 4096, &[]).0, 0);
    assert_ne!(n.request(0, 1 << 40, 4096, &[]).0, 0);

    let m = scrape(&maddr);
    let openstack_200 = value(
        &m,
        "blockd_http_requests_total",
        &[("dialect", "openstack"), ("status", "200")],
    );
    assert!(openstack_200 >= 2.0, "{openstack_200}");
    assert!(value(&m, "blockd_http_requests_total", &[("status", "401")]) >= 1.0);
    assert!(
        value(
            &m,
            "blockd_http_requests_total",
            &[("dialect", "deltacloud")]
        ) >= 1.0
    );
    assert!(
        value(
            &m,
            "blockd_http_request_duration_seconds",
            &[("dialect", "openstack")]
        ) >= 3.0
    );
    let v = [("volume", vol.as_str())];
    let op = |o: &'static str| [("volume", vol.as_str()), ("op", o)];
    assert_eq!(value(&m, "blockd_nbd_requests_total", &op("write")), 1.0);
    assert_eq!(value(&m, "blockd_nbd_requests_total", &op("read")), 3.0);
    assert_eq!(value(&m, "blockd_nbd_requests_total", &op("flush")), 1.0);
    assert_eq!(value(&m, "blockd_nbd_errors_total", &op("read")), 1.0);
    assert_eq!(value(&m, "blockd_nbd_errors_total", &op("write")), 0.0);
    assert_eq!(
        value(&m, "blockd_nbd_read_bytes_total", &v),
        65536.0 + 4096.0
    );
    assert_eq!(value(&m, "blockd_nbd_written_bytes_total", &v), 65536.0);
    assert_eq!(value(&m, "blockd_nbd_clients", &v), 1.0);
    assert_eq!(value(&m, "blockd_nbd_request_duration_seconds", &v), 4.0);
    assert!(value(&m, "blockd_engine_log_bytes_total", &[]) >= 65536.0);
    let lookups = value(
        &m,
        "blockd_engine_cache_lookups_total",
        &[("result", "hit")],
    ) + value(
        &m,
        "blockd_engine_cache_lookups_total",
        &[("result", "miss")],
    );
    assert!(lookups >= 0.0);
    for name in [
        "blockd_engine_checkpoints_total",
        "blockd_engine_checkpoint_errors_total",
        "blockd_engine_reclaims_total",
        "blockd_engine_reclaim_errors_total",
        "blockd_engine_fail_stops_total",
    ] {
        value(&m, name, &[]);
    }
    assert_eq!(value(&m, "blockd_engine_fail_stops_total", &[]), 0.0);
    // Every histogram's buckets are cumulative: never decreasing, none
    // above the +Inf bucket (all observations).
    for x in &m.samples {
        if let Value::Histogram(b) = &x.value {
            let all = b
                .iter()
                .find(|c| c.less_than.is_infinite())
                .map_or(0.0, |c| c.count);
            let mut below = 0.0;
            for c in b {
                assert!(
                    c.count >= below && c.count <= all,
                    "{} {:?}: bucket le={} holds {} (previous {below}, all {all})",
                    x.metric,
                    x.labels,
                    c.less_than,
                    c.count
                );
                below = c.count;
            }
        }
    }
    // The NBD write and the two reads that reached the engine (the
    // failing one is refused before it) held the store lock: counted.
    assert!(
        value(
            &m,
            "blockd_engine_state_lock_hold_seconds",
            &[("holder", "io")]
        ) >= 3.0
    );
    assert_eq!(
        value(&m, "blockd_engine_client_metadata_reads_locked_total", &[]),
        0.0
    );
    value(
        &m,
        "blockd_engine_metadata_reads_total",
        &[("lock", "outside")],
    );
    value(
        &m,
        "blockd_engine_state_lock_longest_hold_seconds",
        &[("holder", "io")],
    );
    // `gc` (through the admin socket) checkpoints and reclaims.
    let before = value(&m, "blockd_engine_checkpoints_total", &[]);
    let reclaims = value(&m, "blockd_engine_reclaims_total", &[]);
    blockd(&api.dir, &["gc"]);
    let m2 = scrape(&maddr);
    let after = value(&m2, "blockd_engine_checkpoints_total", &[]);
    assert!(after > before, "{before} -> {after}");
    assert!(value(&m2, "blockd_engine_reclaims_total", &[]) > reclaims);
    assert!(value(&m2, "blockd_engine_checkpoint_seconds_total", &[]) > 0.0);
    drop(n);
    let t = Instant::now();
    while value(&scrape(&maddr), "blockd_nbd_clients", &v) != 0.0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "client still counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The access log: one line per request at the default level, with
    // the fields, and no secret.
    assert!(wait_log(&api, |l| l.contains(&request_id)));
    let log = api.log();
    let access: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("blockd::access"))
        .collect();
    let line = access
        .iter()
        .find(|l| l.contains(&request_id))
        .expect("access line with the request id");
    for field in [
        "method=GET",
        "path=/v1.1/demo/os-volumes ",
        "status=200",
        "latency_ms=",
        "dialect=openstack",
        "tenant=demo",
        "peer=127.0.0.1:",
        &format!("request_id={request_id}"),
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(access
        .iter()
        .any(|l| l.contains("status=401") && l.contains("tenant=-")));
    assert!(access
        .iter()
        .any(|l| l.contains("dialect=deltacloud") && l.contains("tenant=demo")));
    assert!(access
        .iter()
        .any(|l| l.contains("method=POST") && l.contains("tenant=demo")));
    let b64 = basic_header.trim_start_matches("Basic ");
    for secret in [DEMO, "wrong-token", "demo-password", b64, "hunter2"] {
        assert!(
            log.iter().all(|l| !l.contains(secret)),
            "secret {secret} logged"
        );
    }
}
