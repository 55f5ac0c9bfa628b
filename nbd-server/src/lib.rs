//! blockd's NBD server, on tokio. It serves every volume (read-write),
//! snapshot and image (read-only) of an engine [`engine::Store`] as an NBD
//! export, with fixed newstyle negotiation, structured replies, extended
//! headers (64-bit lengths), `base:allocation` block status, pipelined
//! requests answered out of order, and multi-connection consistency.
//!
//! ```text
//!  server.rs   listeners (TCP, Unix), connection limit, handshake timeout, shutdown
//!    └── session.rs  handshake; reader task -> blocking pool -> writer task
//!          ├── codec.rs   pure wire format: requests, validation (no I/O)
//!          │     ├── options.rs  option haggling: parse options, encode replies
//!          │     └── reply.rs    simple, structured and extended reply framing
//!          ├── export.rs  export names <-> store objects
//!          └── bufpool.rs recycled large I/O buffers
//! ```

mod bufpool;
pub mod codec;
pub mod export;
pub mod fuzzing;
mod options;
mod reply;
mod server;
mod session;

pub use server::{Config, Server};
pub use session::{errno_of, Stream};

/// The NBD server's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
    /// Socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] engine::Error),
}
