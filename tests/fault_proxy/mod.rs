//! A fault-injecting HTTP reverse proxy for the object-store tests: it
//! listens on 127.0.0.1 in front of an S3 server (radosgw) and forwards
//! each request as it came (the Host header included, so SigV4 signatures
//! still verify), unless the test switched a fault on:
//!
//! - [`Fault::Status`]: answer every request (or only PUTs) with a 5xx and
//!   an S3 error body, without forwarding it;
//! - [`Fault::Delay`]: forward, then hold each response back a while;
//! - [`Fault::CutPuts`]: forward a PUT's head and the first half of its
//!   body, then cut both connections (a network cut mid-upload: the
//!   server sees a short body, the client a reset);
//! - [`Fault::Refuse`]: close the listening socket and every open
//!   connection (the server is down: connects are refused), until another
//!   fault is set, when it listens on the same port again.
//!
//! The proxy runs on a runtime of its own (one thread) in the test
//! process and counts what it did.
#![allow(dead_code)]

use hyper::body::HttpBody;
use hyper::service::service_fn;
use hyper::{Body, Method, Request, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the proxy does to the requests it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Answer with this status instead of forwarding: every request, or
    /// only PUTs (uploads) when `puts_only`.
    Status { code: u16, puts_only: bool },
    /// Forward, then delay each response by this much.
    Delay(Duration),
    /// Cut every PUT with a body half way through it.
    CutPuts,
    /// Refuse connections (no listener) and drop the open ones.
    Refuse,
}

/// What the proxy did, counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests forwarded to the server (whole).
    pub forwarded: AtomicU64,
    /// Requests answered with an injected status.
    pub failed: AtomicU64,
    /// Responses delayed.
    pub delayed: AtomicU64,
    /// PUTs cut mid-body.
    pub cut: AtomicU64,
    /// Times the listener was closed.
    pub refusals: AtomicU64,
}

struct Shared {
    upstream: String,
    fault: watch::Sender<Fault>,
    counts: Counts,
    client: hyper::Client<hyper::client::HttpConnector>,
    /// The open connections' tasks (aborted when refusing).
    conns: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// A running proxy (stopped when dropped).
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream`
    /// (`http://HOST:PORT`), passing everything through.
    pub fn start(upstream: &str) -> FaultProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .unwrap();
        let (tx, _) = watch::channel(Fault::Pass);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            fault: tx,
            counts: Counts::default(),
            client: hyper::Client::new(),
            conns: Mutex::new(Vec::new()),
        });
        let listener = rt.block_on(bind("127.0.0.1:0".parse().unwrap()));
        let addr = listener.local_addr().unwrap();
        rt.spawn(accept_loop(shared.clone(), listener, addr));
        FaultProxy {
            addr,
            shared,
            rt: Some(rt),
        }
    }

    /// The endpoint URL clients use, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the fault (takes effect for the next request; `Refuse`
    /// at once).
    pub fn set(&self, f: Fault) {
        self.shared.fault.send_replace(f);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *self.shared.fault.borrow()
    }

    /// The counters.
    pub fn counts(&self) -> &Counts {
        &self.shared.counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A listener on `addr` that may take the port back right after it was
/// closed (SO_REUSEADDR).
async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(addr).unwrap();
    s.listen(128).unwrap()
}

async fn accept_loop(shared: Arc<Shared>, first: tokio::net::TcpListener, addr: SocketAddr) {
    let mut rx = shared.fault.subscribe();
    let mut listener = Some(first);
    loop {
        let refusing = *rx.borrow_and_update() == Fault::Refuse;
        match (&listener, refusing) {
            (Some(_), true) => {
                listener = None;
                for c in shared.conns.lock().unwrap().drain(..) {
                    c.abort();
                }
                shared.counts.refusals.fetch_add(1, Ordering::Relaxed);
            }
            (None, false) => listener = Some(bind(addr).await),
            _ => {}
        }
        let Some(l) = &listener else {
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            accepted = l.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let sh = shared.clone();
                let task = tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(sh.clone(), req));
                    // An error ends the connection: a cut, or the client
                    // went away.
                    let _ = hyper::server::conn::Http::new()
                        .http1_only(true)
                        .serve_connection(stream, svc)
                        .await;
                });
                let mut conns = shared.conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        }
    }
}

/// An S3 error document for an injected status.
fn s3_error(code: u16) -> Response<Body> {
    let name = if code == 503 {
        "ServiceUnavailable"
    } else {
        "InternalError"
    };
    Response::builder()
        .status(code)
        .header("content-type", "application/xml")
        .body(Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{name}</Code>\
             <Message>injected by the test's fault proxy</Message></Error>"
        )))
        .unwrap()
}

/// The request to send upstream: same method, path, headers; `body`.
fn upstream_request(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: Body,
) -> Request<Body> {
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut b = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{pq}", shared.upstream));
    for (k, v) in &parts.headers {
        b = b.header(k, v);
    }
    b.body(body).unwrap()
}

async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Result<Response<Body>, std::io::Error> {
    shared.counts.requests.fetch_add(1, Ordering::Relaxed);
    let fault = *shared.fault.borrow();
    let is_put = req.method() == Method::PUT;
    match fault {
        Fault::Status { code, puts_only } if is_put || !puts_only => {
            shared.counts.failed.fetch_add(1, Ordering::Relaxed);
            // As a server does: the body is read, then the error sent.
            let _ = hyper::body::to_bytes(req.into_body()).await;
            return Ok(s3_error(code));
        }
        Fault::CutPuts if is_put => {
            let len: u64 = req
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            if len > 0 {
                return cut(&shared, req, len / 2).await;
            }
        }
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let resp = shared
        .client
        .request(upstream_request(&shared, &parts, body))
        .await
        .map_err(std::io::Error::other)?;
    shared.counts.forwarded.fetch_add(1, Ordering::Relaxed);
    if let Fault::Delay(d) = fault {
        shared.counts.delayed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(d).await;
    }
    Ok(resp)
}

/// Forwards `req`'s head and its first `keep` body bytes, then cuts the
/// upstream request and (by failing) the client's connection.
async fn cut(
    shared: &Shared,
    req: Request<Body>,
    keep: u64,
) -> Result<Response<Body>, std::io::Error> {
    shared.counts.cut.fetch_add(1, Ordering::Relaxed);
    let (parts, mut body) = req.into_parts();
    let (mut tx, up_body) = Body::channel();
    let upstream = shared
        .client
        .request(upstream_request(shared, &parts, up_body));
    let feed = async move {
        let mut sent = 0u64;
        while sent < keep {
            let Some(Ok(chunk)) = body.data().await else {
                break;
            };
            let take = chunk.len().min((keep - sent) as usize);
            if tx.send_data(chunk.slice(..take)).await.is_err() {
                break;
            }
            sent += take as u64;
        }
        // Let those bytes reach the server before the cut.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.abort();
    };
    let _ = tokio::join!(upstream, feed);
    Err(std::io::Error::other(
        "connection cut mid-body by the fault proxy",
    ))
}
