//! blockd's NBD server, on tokio. It serves every volume (read-write),
//! snapshot and image (read-only) of an engine [`engine::Store`] as an NBD
//! export, with fixed newstyle negotiation, structured replies, extended
//! headers (64-bit lengths), STARTTLS, `base:allocation` block status, pipelined
//! requests answered out of order, multi-connection consistency, and
//! per-volume I/O limits (token buckets).
//!
//! ```text
//!  server.rs   listeners (TCP, Unix), connection limit, handshake timeout, shutdown
//!    └── session.rs  handshake; reader task -> blocking pool -> writer task
//!          ├── codec.rs   pure wire format: requests, validation (no I/O)
//!          │     ├── options.rs  option haggling: parse options, encode replies
//!          │     └── reply.rs    simple, structured and extended reply framing
//!          ├── tls.rs     STARTTLS: certificates, keys, FORCEDTLS or optional
//!          ├── export.rs  export names <-> store objects
//!          ├── access.rs  authorization: attachment secrets, tenant certificates
//!          ├── throttle.rs per-volume token buckets (bytes and requests per second)
//!          ├── metrics.rs per-volume counters (atomics; no metrics format)
//!          └── bufpool.rs recycled large I/O buffers
//! ```

mod access;
mod bufpool;
pub mod codec;
pub mod export;
pub mod fuzzing;
pub mod metrics;
mod options;
mod reply;
mod server;
mod session;
mod throttle;
mod tls;

pub use access::{AccessPolicy, Client, Grant, Revoker};
pub use server::{Config, Server};
pub use session::{errno_of, Stream};
pub use throttle::{Kind as LimitKind, Limits, LimitsHook, Rate};
pub use tls::{Tls, TlsFiles, TlsMode};

/// The NBD server's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
    /// Socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS material could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] engine::Error),
}
