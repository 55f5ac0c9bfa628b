//! What the HTTP edge learns about each request once it is answered: the
//! authenticated tenant (recorded by `auth.rs` as a side channel, so the
//! dialects' credential parsing is not repeated), the access log line
//! (target `blockd::access`, at info), and the [`RequestObserver`] hook
//! the binary's metrics implement.
//!
//! **Invariant:** the access log names the method, the path without its
//! query, the status, latency, tenant, peer and request id; never a
//! header value or a body, so no token or password reaches it.

use crate::Dialect;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

thread_local! {
    /// The tenant whose credentials the current request presented
    /// (requests are dispatched on one blocking thread each).
    static TENANT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records that the request being dispatched on this thread authenticated
/// as tenant `id`.
pub(crate) fn note_tenant(id: &str) {
    TENANT.with(|t| *t.borrow_mut() = Some(id.to_string()));
}

/// Runs `f` (one request's dispatch) and returns its result with the
/// tenant it authenticated as, if any.
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, Option<String>) {
    TENANT.with(|t| t.borrow_mut().take());
    let r = f();
    (r, TENANT.with(|t| t.borrow_mut().take()))
}

/// A response extension carrying the authenticated tenant from the
/// handler to the connection layer (never sent to the client).
#[derive(Debug, Clone)]
pub(crate) struct TenantTag(pub(crate) Option<String>);

/// One answered request, as the access log and metrics see it.
#[derive(Debug)]
pub struct RequestRecord<'a> {
    /// The dialect that owns the path.
    pub dialect: Dialect,
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The status sent.
    pub status: u16,
    /// From the request head parsed to the response head ready.
    pub latency: Duration,
    /// The tenant the request authenticated as.
    pub tenant: Option<&'a str>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request id the response carries (`x-compute-request-id`).
    pub request_id: Option<&'a str>,
}

/// Told about every answered request (metrics).
pub trait RequestObserver: Send + Sync + 'static {
    /// One request was answered.
    fn observe(&self, r: &RequestRecord<'_>);
}

impl Dialect {
    /// A short lowercase name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenStack => "openstack",
            Dialect::Deltacloud => "deltacloud",
            Dialect::Cimi => "cimi",
            Dialect::Danube => "danube",
            Dialect::Keystone => "keystone",
            Dialect::Cinder => "cinder",
            Dialect::Glance => "glance",
        }
    }
}

/// Writes the access log line for `r`.
pub(crate) fn log(r: &RequestRecord<'_>) {
    tracing::info!(
        target: "blockd::access",
        method = %r.method,
        path = %r.path.escape_debug(),
        status = r.status,
        latency_ms = format_args!("{:.3}", r.latency.as_secs_f64() * 1e3),
        dialect = %r.dialect.name(),
        tenant = %r.tenant.unwrap_or("-"),
        peer = %r.peer,
        request_id = %r.request_id.unwrap_or("-"),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_only_this_requests_tenant() {
        note_tenant("stale");
        let ((), t) = capture(|| ());
        assert_eq!(t, None);
        let ((), t) = capture(|| note_tenant("demo"));
        assert_eq!(t.as_deref(), Some("demo"));
        let ((), t) = capture(|| ());
        assert_eq!(t, None);
    }
}
