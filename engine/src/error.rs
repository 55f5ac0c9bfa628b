//! The engine's one public error type: a matchable [`ErrorKind`], a human
//! context string naming the object and offset involved, and the underlying
//! I/O error when there is one. Front ends map kinds to errno or HTTP status.

use std::fmt;
use std::io;

/// What went wrong, in a form front ends can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No object has that id or name.
    NotFound,
    /// An object with that name already exists.
    AlreadyExists,
    /// A name matches more than one object.
    Ambiguous,
    /// An argument is malformed or out of its allowed range.
    InvalidArgument,
    /// The object is read-only (a snapshot or an image).
    ReadOnly,
    /// An I/O range lies outside the object.
    OutOfRange,
    /// Stored bytes failed their checksum or self-identification.
    Corrupt,
    /// The operating system reported an I/O error.
    Io,
    /// The filesystem holding the store is full.
    NoSpace,
    /// An earlier durability failure stopped the store; reopen it.
    FailStopped,
    /// Another process holds the data directory.
    Locked,
    /// The operation is not supported (for example shrinking a volume).
    Unsupported,
    /// A counter that must never wrap (chunk ids, sequence numbers,
    /// segment numbers, generations) is near its limit: the operation was
    /// refused before anything was applied.
    Exhausted,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Ambiguous => "ambiguous name",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::OutOfRange => "out of range",
            ErrorKind::Corrupt => "corruption detected",
            ErrorKind::Io => "I/O error",
            ErrorKind::NoSpace => "no space left",
            ErrorKind::FailStopped => "store failed and stopped",
            ErrorKind::Locked => "data directory locked",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Exhausted => "counter exhausted",
        };
        f.write_str(s)
    }
}

/// An engine error: kind, context and optional source.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {context}")]
pub struct Error {
    kind: ErrorKind,
    context: String,
    #[source]
    source: Option<io::Error>,
}

impl Error {
    /// A new error of `kind` with a context message.
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Error {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// Wraps an I/O error, classifying ENOSPC apart from other failures.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        let kind =
            if source.raw_os_error() == Some(28) || source.kind() == io::ErrorKind::StorageFull {
                ErrorKind::NoSpace
            } else {
                ErrorKind::Io
            };
        Error {
            kind,
            context: context.into(),
            source: Some(source),
        }
    }

    /// A checksum or self-identification failure.
    pub fn corrupt(context: impl Into<String>) -> Self {
        Error::new(ErrorKind::Corrupt, context)
    }

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The context message.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The same error with more context in front.
    pub fn with_context(mut self, ctx: impl fmt::Display) -> Self {
        self.context = format!("{ctx}: {}", self.context);
        self
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
