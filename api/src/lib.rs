//! blockd's REST API front end, on warp: four dialects over one engine,
//! chosen by path prefix ([`Dialect`]):
//! - the HP Cloud / OpenStack Nova `os-volumes` v1.1 extension
//!   (`openstack/`): volumes, snapshots and volume attachments under
//!   `/v1.1/{tenant_id}`, version documents at `/` and `/v1.1/`, an OpenAPI
//!   description at `/openapi.json`;
//! - Deltacloud storage volumes and snapshots under `/api` (`deltacloud/`);
//! - DMTF CIMI 1.0.1 volumes and volume images under `/cimi` (`cimi/`);
//! - Danube Cloud images, VM snapshots and tasks under `/api/image`,
//!   `/api/vm` and `/api/task` (`danube/`);
//! - a minimal Keystone v3 identity service under `/v3` and `/identity/v3`
//!   (`keystone/`): tokens for the tenants of the auth file and a service
//!   catalogue naming the Cinder endpoint;
//! - the Cinder block storage v3 API under `/volume/v3/{project_id}`
//!   (`cinder/`), as today's OpenStack clients speak it, and a read-only
//!   Glance v2 image list under `/image` (`glance/`) for their image lookups.
//!
//! ```text
//!  warp filter (routes) ── reads the body (≤ 1 MiB), one blocking task per request
//!    │
//!    ├── serve_http.rs the listener: hyper accept loop, connection cap, timeouts
//!    ├── access.rs     access log, tenant side channel, RequestObserver (metrics)
//!    ├── http.rs       Request / Reply: plain values, no warp in handlers
//!    ├── auth.rs       tenants, tokens, constant-time checks, the auth file
//!    ├── token.rs      stateless HMAC-signed expiring tokens (Keystone's)
//!    ├── remote.rs     remote fetches for imports: allow-list, public addresses only
//!    ├── meta.rs       API state kept in engine status + metadata (api.*, user.*)
//!    ├── error.rs      ApiError: one error type, no HTTP in it
//!    ├── domain/       the tenant-scoped operations, quota and visibility
//!    │                 rules every dialect calls (dialects never import
//!    │                 each other)
//!    ├── openstack/    routing, views, business rules, fault bodies
//!    ├── deltacloud/   the same for Deltacloud (XML default, JSON)
//!    ├── cimi/         the same for CIMI (JSON default, XML)
//!    ├── danube/       the same for Danube Cloud (JSON, tasks)
//!    ├── keystone/     minimal Keystone v3: discovery, tokens, catalogue
//!    ├── cinder/       Cinder v3: microversions, volumes, snapshots, quotas
//!    └── glance/       read-only Glance v2 over the engine's images
//! ```
//!
//! **Invariant:** the API keeps no state of its own: everything it knows is
//! in the engine's catalogue, so the NBD and FUSE front ends (and a restart)
//! see the same volumes, statuses and attachments. Check-then-act sequences
//! (quota, attach, delete) run under one API-wide lock. The one exception
//! is Danube's task list (running and recent image imports), which lives
//! in memory: a restart forgets it, never an object.

mod access;
mod auth;
mod cimi;
mod cinder;
mod danube;
mod deltacloud;
mod domain;
mod error;
pub mod fuzzing;
mod glance;
mod http;
mod keystone;
pub mod meta;
mod nbd_access;
mod openstack;
mod remote;
mod serve_http;
mod token;

pub use access::{RequestObserver, RequestRecord};
pub use auth::{Auth, Quota, Tenant};
pub use error::{ApiError, ErrorKind, Result};
pub use http::{Reply, Request, MAX_BODY};
pub use nbd_access::{NbdAccess, RevokeHook};
pub use remote::{AllowedHost, ImportPolicy};
pub use serve_http::{bind_limited, HttpLimits};

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

/// Where the Cinder v3 API lives: `/volume/v3/{project_id}/...` (the
/// catalogue the Keystone dialect hands out names it).
pub(crate) const CINDER_V3_PATH: &str = "/volume/v3";

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
    danube: danube::State,
    import_policy: std::sync::OnceLock<ImportPolicy>,
    nbd: std::sync::OnceLock<NbdAccess>,
    token_key: token::TokenKey,
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
                danube: danube::State::default(),
                import_policy: std::sync::OnceLock::new(),
                nbd: std::sync::OnceLock::new(),
                token_key: token::TokenKey::random(),
            }),
        }
    }

    /// The same state with Danube Cloud image imports configured: `file://`
    /// manifest and file URLs must point inside `dir`, image files are at
    /// most `max_file` bytes. Also deletes the temporary volumes of imports
    /// a crash interrupted.
    pub fn with_image_import(self, dir: std::path::PathBuf, max_file: u64) -> Self {
        self.inner
            .danube
            .configure(&self.inner.store, Some(dir), max_file);
        self
    }

    /// The same state with remote (http, https) image imports allowed as
    /// `policy` says; without it they are all refused. Set once: later
    /// calls change nothing.
    pub fn with_import_policy(self, policy: ImportPolicy) -> Self {
        let _ = self.inner.import_policy.set(policy);
        self
    }

    /// The same state telling attach answers how NBD is reached, and
    /// revoking attachments through `access.revoke` on detach. Set once.
    pub fn with_nbd(self, access: NbdAccess) -> Self {
        let _ = self.inner.nbd.set(access);
        self
    }

    /// How NBD is reached, when the server runs one.
    pub(crate) fn nbd(&self) -> Option<&NbdAccess> {
        self.inner.nbd.get()
    }

    /// Which remote sources imports may read.
    pub(crate) fn import_policy(&self) -> ImportPolicy {
        self.inner.import_policy.get().cloned().unwrap_or_default()
    }

    pub(crate) fn danube(&self) -> &danube::State {
        &self.inner.danube
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The key that signs this run's Keystone tokens.
    pub(crate) fn token_key(&self) -> &token::TokenKey {
        &self.inner.token_key
    }

    /// The tenant an `X-Auth-Token` speaks for: a token this server signed
    /// and that has not expired (its tenant still in the auth file), or a
    /// tenant's static token.
    pub(crate) fn authenticate(&self, token: &str) -> Option<&Tenant> {
        if token::is_signed_form(token) {
            let claims = self.token_key().verify(token, token::UnixTime::now())?;
            let t = self.auth().by_id(&claims.tenant)?;
            access::note_tenant(&t.id);
            Some(t)
        } else {
            self.auth().by_token(token)
        }
    }

    /// Serializes check-then-act sequences.
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.inner.lock.lock()
    }
}

/// The REST dialects, each with its own paths, formats and error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// HP Cloud / OpenStack os-volumes v1.1 (`/`, `/v1.1/...`).
    OpenStack,
    /// Deltacloud (`/api`, but for the Danube paths).
    Deltacloud,
    /// DMTF CIMI 1.0.1 (`/cimi/...`).
    Cimi,
    /// Danube Cloud (`/api/image/`, `/api/vm/`, `/api/task/`).
    Danube,
    /// Minimal Keystone v3 (`/v3/...`, `/identity/...`).
    Keystone,
    /// Cinder block storage v3 (`/volume/...`).
    Cinder,
    /// A read-only Glance v2 over the engine's images (`/image/...`).
    Glance,
}

impl Dialect {
    /// The dialect that owns `path`.
    pub fn of(path: &str) -> Dialect {
        let mut segs = path.split('/').filter(|s| !s.is_empty());
        match (segs.next(), segs.next()) {
            (Some("cimi"), _) => Dialect::Cimi,
            (Some("api"), Some("image" | "vm" | "task")) => Dialect::Danube,
            (Some("api"), _) => Dialect::Deltacloud,
            (Some("v3" | "identity"), _) => Dialect::Keystone,
            (Some("volume"), _) => Dialect::Cinder,
            (Some("image"), _) => Dialect::Glance,
            _ => Dialect::OpenStack,
        }
    }

    /// Handles one request of this dialect, errors included.
    fn dispatch(self, state: &ApiState, req: &Request) -> Reply {
        match self {
            Dialect::OpenStack => match openstack::dispatch(state, req) {
                Ok(r) => r,
                Err(e) => openstack::fault::reply(&e),
            },
            Dialect::Deltacloud => deltacloud::dispatch(state, req),
            Dialect::Cimi => cimi::dispatch(state, req),
            Dialect::Danube => danube::dispatch(state, req),
            Dialect::Keystone => keystone::dispatch(state, req),
            Dialect::Cinder => cinder::dispatch(state, req),
            Dialect::Glance => glance::dispatch(state, req),
        }
    }

    /// This dialect's error reply for `e` (a request that failed before
    /// its handler ran: unreadable or oversized body, handler panic).
    fn error_reply(self, req: &Request, e: &ApiError) -> Reply {
        match self {
            Dialect::OpenStack => openstack::fault::reply(e),
            Dialect::Deltacloud => deltacloud::error_reply(req, e),
            Dialect::Cimi => cimi::error_reply(req, e),
            Dialect::Danube => danube::error_reply(req, e),
            Dialect::Keystone => keystone::error_reply(e),
            Dialect::Cinder => cinder::fault::reply(req, e),
            Dialect::Glance => glance::error_reply(e),
        }
    }
}

/// Handles one request: the whole API without warp, for tests and
/// embedding. Blocks (engine calls): run it on a blocking thread.
pub fn dispatch(state: &ApiState, req: &Request) -> Reply {
    Dialect::of(&req.path).dispatch(state, req)
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
    let mut resp = match (&reply.raw, &reply.body) {
        (Some((ct, bytes)), _) => {
            let mut r = Response::new(warp::hyper::Body::from(bytes.clone()));
            if let Ok(v) = HeaderValue::from_str(ct) {
                r.headers_mut().insert("content-type", v);
            }
            r
        }
        (None, Some(v)) => {
            let mut r = Response::new(warp::hyper::Body::from(v.to_string()));
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
        (None, None) => Response::new(warp::hyper::Body::empty()),
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
    let dialect = Dialect::of(path.as_str());
    let mut tenant = None;
    let reply = match read_body(&headers, body).await {
        Err(e) => {
            let req = Request::new(method, path.as_str(), &query, headers, Bytes::new());
            dialect.error_reply(&req, &e)
        }
        Ok(body) => {
            let req = Request::new(method, path.as_str(), &query, headers, body);
            let _permit = state.inner.permits.acquire().await;
            let st = state.clone();
            let (method, path, query, headers) = (
                req.method.clone(),
                req.path.clone(),
                query.clone(),
                req.headers.clone(),
            );
            match tokio::task::spawn_blocking(move || access::capture(|| dispatch(&st, &req))).await
            {
                Ok((r, t)) => {
                    tenant = t;
                    tracing::debug!(%method, %path, status = r.status, "api request");
                    r
                }
                Err(e) => {
                    tracing::error!(%method, %path, error = %e, "api handler panicked");
                    let req = Request::new(method, &path, &query, headers, Bytes::new());
                    dialect.error_reply(&req, &ApiError::internal("handler failed"))
                }
            }
        }
    };
    let mut resp = to_response(reply);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        if matches!(
            dialect,
            Dialect::Keystone | Dialect::Cinder | Dialect::Glance
        ) {
            resp.headers_mut().insert("x-openstack-request-id", v);
        } else {
            resp.headers_mut().insert("x-compute-request-id", v);
        }
    }
    resp.extensions_mut().insert(access::TenantTag(tenant));
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
