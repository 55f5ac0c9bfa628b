//! blockd's REST API front end, on warp. One dialect so far: the HP Cloud /
//! OpenStack Nova `os-volumes` v1.1 extension (`openstack/`): volumes,
//! snapshots and volume attachments under `/v1.1/{tenant_id}`, with the
//! version documents at `/` and `/v1.1/`, and an OpenAPI description at
//! `/openapi.json`.
//!
//! ```text
//!  warp filter (routes) ── reads the body (≤ 1 MiB), one blocking task per request
//!    │
//!    ├── http.rs       Request / Reply: plain values, no warp in handlers
//!    ├── auth.rs       tenants, tokens, constant-time checks, the auth file
//!    ├── meta.rs       API state kept in engine status + metadata (api.*, user.*)
//!    ├── error.rs      ApiError: one error type, no HTTP in it
//!    └── openstack/    routing, views, business rules, fault bodies
//! ```
//!
//! **Invariant:** the API keeps no state of its own: everything it knows is
//! in the engine's catalogue, so the NBD and FUSE front ends (and a restart)
//! see the same volumes, statuses and attachments. Check-then-act sequences
//! (quota, attach, delete) run under one API-wide lock.

mod auth;
mod error;
mod http;
pub mod meta;
mod openstack;

pub use auth::{Auth, Quota, Tenant};
pub use error::{ApiError, ErrorKind, Result};
pub use http::{Reply, Request, MAX_BODY};

use bytes::{Buf, Bytes, BytesMut};
use engine::Store;
use futures_util::{Stream, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::Filter;

/// The HTTP response type the filter produces.
pub type Response = warp::http::Response<warp::hyper::Body>;

/// Most requests doing engine work at once (each holds a blocking thread).
const MAX_CONCURRENT: usize = 16;

/// What the handlers share: the store, the tenants, the API-wide lock.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    auth: Auth,
    lock: parking_lot::Mutex<()>,
    permits: tokio::sync::Semaphore,
}

impl ApiState {
    /// State serving `store` to the tenants of `auth`.
    pub fn new(store: Store, auth: Auth) -> Self {
        ApiState {
            inner: Arc::new(Inner {
                store,
                auth,
                lock: parking_lot::Mutex::new(()),
                permits: tokio::sync::Semaphore::new(MAX_CONCURRENT),
            }),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// Serializes check-then-act sequences.
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.inner.lock.lock()
    }
}

/// Handles one request: the whole API without warp, for tests and
/// embedding. Blocks (engine calls): run it on a blocking thread.
pub fn dispatch(state: &ApiState, req: &Request) -> Reply {
    match openstack::dispatch(state, req) {
        Ok(r) => r,
        Err(e) => openstack::fault::reply(&e),
    }
}

/// Bodies over [`MAX_BODY`] but under this are read and dropped before the
/// 413, so that simple clients (which send the whole body before reading)
/// see the fault instead of a reset connection.
const DRAIN_LIMIT: u64 = 8 << 20;

async fn read_body<S, B>(headers: &HeaderMap, body: S) -> Result<Bytes>
where
    S: Stream<Item = std::result::Result<B, warp::Error>>,
    B: Buf,
{
    let too_big =
        || ApiError::over_limit(format!("Request body is larger than {MAX_BODY} bytes."), 0);
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = std::pin::pin!(body);
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_big());
    }
    let mut out = BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("Cannot read the request body: {e}")))?;
        seen += chunk.remaining() as u64;
        if seen > DRAIN_LIMIT {
            return Err(too_big());
        }
        if seen > MAX_BODY as u64 {
            out.clear();
            continue;
        }
        while chunk.has_remaining() {
            let c = chunk.chunk();
            out.extend_from_slice(c);
            let n = c.len();
            chunk.advance(n);
        }
    }
    if seen > MAX_BODY as u64 {
        return Err(too_big());
    }
    Ok(out.freeze())
}

fn to_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match &reply.body {
        Some(v) => {
            let mut r = Response::new(warp::hyper::Body::from(v.to_string()));
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
        None => Response::new(warp::hyper::Body::empty()),
    };
    *resp.status_mut() = status;
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

async fn handle<S, B>(
    state: ApiState,
    method: Method,
    path: warp::path::FullPath,
    query: String,
    headers: HeaderMap,
    body: S,
) -> Response
where
    S: Stream<Item = std::result::Result<B, warp::Error>>,
    B: Buf,
{
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let reply = match read_body(&headers, body).await {
        Err(e) => openstack::fault::reply(&e),
        Ok(body) => {
            let req = Request::new(method, path.as_str(), &query, headers, body);
            let _permit = state.inner.permits.acquire().await;
            let st = state.clone();
            let method = req.method.clone();
            let path = req.path.clone();
            match tokio::task::spawn_blocking(move || dispatch(&st, &req)).await {
                Ok(r) => {
                    tracing::debug!(%method, %path, status = r.status, "api request");
                    r
                }
                Err(e) => {
                    tracing::error!(%method, %path, error = %e, "api handler panicked");
                    openstack::fault::reply(&ApiError::internal("handler failed"))
                }
            }
        }
    };
    let mut resp = to_response(reply);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-compute-request-id", v);
    }
    resp
}

/// The API as one warp filter. It answers every path (unknown ones with a
/// 404 fault) and never rejects.
pub fn routes(
    state: ApiState,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .map(move || state.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(handle)
        .recover(|_rej: warp::Rejection| async {
            Ok::<_, std::convert::Infallible>(to_response(openstack::fault::reply(
                &ApiError::bad_request("Bad request."),
            )))
        })
        .unify()
}

/// Binds `addr` and returns the bound address and the server future, which
/// finishes after `shutdown` resolves and open requests complete.
pub fn bind(
    state: ApiState,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>)> {
    warp::serve(routes(state))
        .try_bind_with_graceful_shutdown(addr, shutdown)
        .map_err(|e| ApiError::config(format!("cannot listen on {addr}: {e}")))
}
