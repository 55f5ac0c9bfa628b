//! [`ApiError`]: the crate's one public error type. It carries a matchable
//! [`ErrorKind`], a client-facing message and, for engine failures, the
//! engine error as its source. It knows nothing of HTTP: each dialect maps
//! kinds to a status and a fault body at the edge (`openstack/fault.rs`).

use engine::ErrorKind as EngineKind;

/// What went wrong, in a form the HTTP edge can map to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a business rule.
    BadRequest,
    /// No credentials, or wrong ones.
    Unauthorized,
    /// Valid credentials, but not for this tenant.
    Forbidden,
    /// No such resource (or not the caller's).
    NotFound,
    /// The resource exists but not with this method.
    MethodNotAllowed,
    /// The request clashes with the resource's state (a device in use).
    Conflict,
    /// A quota or size limit was hit.
    OverLimit,
    /// The request body has a media type the API does not take.
    UnsupportedMediaType,
    /// The body is well-formed but not the expected document.
    Unprocessable,
    /// The operation exists in the dialect but is not implemented.
    NotImplemented,
    /// The store cannot serve requests now (full, or fail-stopped).
    Unavailable,
    /// A bug or an I/O failure: the client is not at fault.
    Internal,
    /// The server could not start (bad auth file, address in use).
    Config,
}

/// An API error: kind, message and optional engine source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
    /// Seconds a client should wait before retrying (quota faults).
    retry_after: Option<u64>,
    /// Methods the resource allows (method faults).
    allow: Option<&'static str>,
    #[source]
    source: Option<engine::Error>,
}

impl ApiError {
    /// A new error of `kind` with a client-facing message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
            allow: None,
            source: None,
        }
    }

    /// 400: malformed request or broken business rule.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// 422: the body is not the document the call expects.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }

    /// 413 with a retry hint in seconds.
    pub fn over_limit(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(ErrorKind::OverLimit, message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 405 for a resource that allows only `allow` (e.g. "GET, POST").
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            ErrorKind::MethodNotAllowed,
            "The method specified is not allowed for this resource.",
        );
        e.allow = Some(allow);
        e
    }

    /// 500: a bug or a failure the client cannot fix.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// A start-up problem (auth file, listen address).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds to wait before retrying, for quota errors.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The allowed methods, for method errors.
    pub fn allow(&self) -> Option<&'static str> {
        self.allow
    }

    /// The engine error behind this one, if any.
    pub fn engine_error(&self) -> Option<&engine::Error> {
        self.source.as_ref()
    }
}

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        let kind = match e.kind() {
            EngineKind::NotFound => ErrorKind::NotFound,
            EngineKind::AlreadyExists | EngineKind::Ambiguous => ErrorKind::Conflict,
            EngineKind::InvalidArgument
            | EngineKind::ReadOnly
            | EngineKind::OutOfRange
            | EngineKind::Unsupported => ErrorKind::BadRequest,
            EngineKind::NoSpace | EngineKind::Exhausted | EngineKind::FailStopped => {
                ErrorKind::Unavailable
            }
            EngineKind::Corrupt | EngineKind::Io | EngineKind::Locked => ErrorKind::Internal,
        };
        ApiError {
            kind,
            message: e.to_string(),
            retry_after: None,
            allow: None,
            source: Some(e),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
