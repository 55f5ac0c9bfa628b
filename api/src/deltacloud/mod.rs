//! The Deltacloud dialect: storage volumes and snapshots under `/api` (XML by default, JSON), HTTP Basic auth. Not implemented yet: every request is
//! answered 501.

use crate::error::{ApiError, ErrorKind};
use crate::http::{Reply, Request};
use crate::ApiState;

/// Handles one request of this dialect, errors included.
pub(crate) fn dispatch(_state: &ApiState, req: &Request) -> Reply {
    error_reply(
        req,
        &ApiError::new(
            ErrorKind::NotImplemented,
            "This dialect is not implemented yet.",
        ),
    )
}

/// This dialect's error reply for `e`.
pub(crate) fn error_reply(_req: &Request, e: &ApiError) -> Reply {
    crate::openstack::fault::reply(e)
}
