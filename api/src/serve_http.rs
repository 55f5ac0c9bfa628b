//! The API's HTTP/1.1 listener: warp's filter served through our own
//! accept loop on hyper, with limits that keep slow or idle clients from
//! exhausting the server ([`HttpLimits`]):
//!
//! - at most `max_connections` connections; past it, new ones wait in the
//!   kernel's accept queue until one closes (never an unbounded task set);
//! - a request head must arrive whole within `header_timeout` of the
//!   connection's first read, or of the previous response (hyper's header
//!   read timeout): slowloris clients are closed;
//! - a connection with no request in flight and no bytes moving for
//!   `idle_timeout` is closed (idle keep-alive, and clients that stop
//!   reading responses);
//! - request bodies are read by at most `max_body_readers` requests at a
//!   time, each within `body_timeout`; a body that misses it gets 408 and
//!   the connection is closed.
//!
//! Every answered request goes to the access log and the optional
//! [`RequestObserver`] (`access.rs`).

use crate::access::{self, RequestObserver, RequestRecord, TenantTag};
use crate::{ApiError, ApiState, Dialect, Response, Result};
use bytes::Bytes;
use futures_util::Stream;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use warp::http::{HeaderValue, StatusCode};
use warp::hyper::body::HttpBody;
use warp::hyper::{self, Body};

/// How long, and how many bytes, a closing connection reads and drops.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// Largest request head (request line and headers) a client may send.
const MAX_HEAD: usize = 128 * 1024;

/// Limits of the API's HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time allowed for a whole request head.
    pub header_timeout: Duration,
    /// Time a connection may sit with no request and no traffic.
    pub idle_timeout: Duration,
    /// Time allowed for a whole request body, once it is being read.
    pub body_timeout: Duration,
    /// Most requests reading their bodies at once.
    pub max_body_readers: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_body_readers: 32,
        }
    }
}

impl HttpLimits {
    /// Checks that every limit is usable: counts from 1 to 65,536,
    /// timeouts from 1 ms to one day.
    pub fn validate(&self) -> Result<()> {
        let count = |name: &str, n: usize| {
            if (1..=65_536).contains(&n) {
                Ok(())
            } else {
                Err(ApiError::config(format!(
                    "{name} must be between 1 and 65536 (got {n})"
                )))
            }
        };
        let time = |name: &str, d: Duration| {
            if d >= Duration::from_millis(1) && d <= Duration::from_secs(86_400) {
                Ok(())
            } else {
                Err(ApiError::config(format!(
                    "{name} must be between 1 ms and one day (got {d:?})"
                )))
            }
        };
        count("the HTTP connection limit", self.max_connections)?;
        count("the HTTP body reader limit", self.max_body_readers)?;
        time("the HTTP header timeout", self.header_timeout)?;
        time("the HTTP idle timeout", self.idle_timeout)?;
        time("the HTTP body timeout", self.body_timeout)
    }
}

/// Binds `addr` and returns the bound address and the server future, which
/// finishes after `shutdown` resolves and open requests complete; serves
/// under `limits`, telling `observer` about every answered request.
pub fn bind_limited(
    state: ApiState,
    addr: SocketAddr,
    limits: HttpLimits,
    observer: Option<Arc<dyn RequestObserver>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>)> {
    limits.validate()?;
    let listen_err = |e: std::io::Error| ApiError::config(format!("cannot listen on {addr}: {e}"));
    let l = std::net::TcpListener::bind(addr).map_err(listen_err)?;
    l.set_nonblocking(true).map_err(listen_err)?;
    let l = TcpListener::from_std(l).map_err(listen_err)?;
    let bound = l.local_addr().map_err(listen_err)?;
    let shared = Arc::new(Shared {
        body_readers: Arc::new(Semaphore::new(limits.max_body_readers)),
        limits,
        observer,
    });
    Ok((bound, accept_loop(l, state, shared, shutdown)))
}

/// What every connection shares.
struct Shared {
    limits: HttpLimits,
    body_readers: Arc<Semaphore>,
    observer: Option<Arc<dyn RequestObserver>>,
}

async fn accept_loop(
    l: TcpListener,
    state: ApiState,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let max = shared.limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let filter = warp::service(crate::routes(state));
    let mut http = hyper::server::conn::Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        .http1_header_read_timeout(shared.limits.header_timeout)
        .max_buf_size(MAX_HEAD);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned = false;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if !warned {
                    tracing::warn!(
                        limit = max,
                        "HTTP connection limit reached: new connections wait"
                    );
                    warned = true;
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    s = slots.clone().acquire_owned() => s.expect("never closed"),
                }
            }
        };
        let (sock, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = l.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if slots.available_permits() > max / 10 {
            warned = false;
        }
        let _ = sock.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = Tracked {
            inner: sock,
            activity: activity.clone(),
        };
        let svc = {
            let (filter, shared, activity) = (filter.clone(), shared.clone(), activity.clone());
            hyper::service::service_fn(move |req: hyper::Request<Body>| {
                let filter = filter.clone();
                let in_flight = InFlight::new(activity.clone());
                let shared = shared.clone();
                async move {
                    let r = serve_one(filter, req, &shared, peer).await;
                    drop(in_flight);
                    Ok::<_, std::convert::Infallible>(r)
                }
            })
        };
        let mut conn = http.serve_connection(io, svc);
        let idle = shared.limits.idle_timeout;
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            // Runs the connection until it ends, goes idle, or (after
            // shutdown) finishes the request in flight.
            let mut stopping = false;
            let done = loop {
                let at = activity.last() + idle;
                tokio::select! {
                    r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => {
                        if let Err(e) = &r {
                            tracing::debug!(%peer, error = %e, "HTTP connection ended");
                        }
                        break r.is_ok();
                    }
                    _ = tokio::time::sleep_until(at.into()) => {
                        if activity.in_flight() == 0 && activity.last() + idle <= Instant::now() {
                            tracing::debug!(%peer, "HTTP connection idle: closing");
                            break false;
                        }
                    }
                    _ = stop.wait_for(|s| *s), if !stopping => {
                        stopping = true;
                        Pin::new(&mut conn).graceful_shutdown();
                    }
                }
            };
            if done && !stopping {
                linger(conn.into_parts().io).await;
            }
            drop(slot);
        });
    }
    drop(l);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it has closed.
    let _ = slots.acquire_many(max as u32).await;
}

/// Closes a connection whose last response is sent: FIN first, then what
/// the client still sends (an unread body) is read and dropped for a
/// moment, so that closing does not reset the connection before the client
/// has read that response.
async fn linger(mut io: Tracked) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if io.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut b = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match io.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Serves one request through the filter: bounds its body, answers 408
/// for a body that came too slowly, logs and observes it.
async fn serve_one<F>(
    mut filter: F,
    req: hyper::Request<Body>,
    shared: &Shared,
    peer: SocketAddr,
) -> Response
where
    F: hyper::service::Service<
        hyper::Request<Body>,
        Response = Response,
        Error = std::convert::Infallible,
    >,
{
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let timed_out = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let body = if body.is_end_stream() {
        body
    } else {
        Body::wrap_stream(GuardedBody {
            inner: body,
            readers: shared.body_readers.clone(),
            acquiring: None,
            permit: None,
            deadline: None,
            timeout: shared.limits.body_timeout,
            timed_out: timed_out.clone(),
            done: false,
        })
    };
    let mut resp = match filter.call(hyper::Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if timed_out.load(Ordering::Acquire) {
        resp = body_timeout_reply(&resp, shared.limits.body_timeout);
    }
    let tenant = resp
        .extensions()
        .get::<TenantTag>()
        .and_then(|t| t.0.clone());
    let record = RequestRecord {
        dialect: Dialect::of(&path),
        method: method.as_str(),
        path: &path,
        status: resp.status().as_u16(),
        latency: started.elapsed(),
        tenant: tenant.as_deref(),
        peer,
        request_id: resp
            .headers()
            .get("x-compute-request-id")
            .and_then(|v| v.to_str().ok()),
    };
    access::log(&record);
    if let Some(o) = &shared.observer {
        o.observe(&record);
    }
    resp
}

/// The 408 sent instead of the dialect's read error when a body missed
/// its deadline (keeping the request id); the connection is closed after.
fn body_timeout_reply(dialect_reply: &Response, timeout: Duration) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": 408,
            "message": format!(
                "The request body was not received within {} ms.",
                timeout.as_millis()
            ),
        }
    });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("connection", HeaderValue::from_static("close"));
    if let Some(id) = dialect_reply.headers().get("x-compute-request-id") {
        h.insert("x-compute-request-id", id.clone());
    }
    if let Some(t) = dialect_reply.extensions().get::<TenantTag>() {
        r.extensions_mut().insert(t.clone());
    }
    r
}

/// Why a guarded body stopped.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("request body not received in time")]
    Timeout,
    #[error("server shutting down")]
    Closed,
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

type Acquire = Pin<
    Box<
        dyn Future<Output = std::result::Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>
            + Send,
    >,
>;

/// A request body read under a reader slot and within a deadline that
/// starts when the slot is granted.
struct GuardedBody {
    inner: Body,
    readers: Arc<Semaphore>,
    acquiring: Option<Acquire>,
    permit: Option<OwnedSemaphorePermit>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    timed_out: Arc<AtomicBool>,
    done: bool,
}

impl GuardedBody {
    fn finish(&mut self) {
        self.done = true;
        self.permit = None;
        self.deadline = None;
    }
}

impl Stream for GuardedBody {
    type Item = std::result::Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut *self;
        if me.done {
            return Poll::Ready(None);
        }
        if me.permit.is_none() {
            let readers = me.readers.clone();
            let acq = me
                .acquiring
                .get_or_insert_with(|| Box::pin(readers.acquire_owned()));
            match acq.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => {
                    me.finish();
                    return Poll::Ready(Some(Err(BodyError::Closed)));
                }
                Poll::Ready(Ok(p)) => {
                    me.acquiring = None;
                    me.permit = Some(p);
                    me.deadline = Some(Box::pin(tokio::time::sleep(me.timeout)));
                }
            }
        }
        if let Some(d) = me.deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                me.timed_out.store(true, Ordering::Release);
                me.finish();
                return Poll::Ready(Some(Err(BodyError::Timeout)));
            }
        }
        match Pin::new(&mut me.inner).poll_data(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                me.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(b))),
            Poll::Ready(Some(Err(e))) => {
                me.finish();
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }
}

/// When a connection last moved bytes, and how many of its requests are
/// being handled.
struct Activity {
    base: Instant,
    /// Milliseconds after `base`.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that notes every read or write of at least one byte.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_validated() {
        assert!(HttpLimits::default().validate().is_ok());
        let bad = [
            HttpLimits {
                max_connections: 0,
                ..Default::default()
            },
            HttpLimits {
                max_body_readers: 0,
                ..Default::default()
            },
            HttpLimits {
                header_timeout: Duration::ZERO,
                ..Default::default()
            },
            HttpLimits {
                idle_timeout: Duration::from_secs(100_000),
                ..Default::default()
            },
        ];
        for l in bad {
            assert!(l.validate().is_err(), "{l:?}");
        }
    }
}
