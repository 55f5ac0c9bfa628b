//! How an attached volume is reached over NBD, as the API tells clients.
//!
//! Attaching a volume mints a per-attachment secret, kept in the object's
//! metadata under [`meta::NBD_SECRET`]; with NBD authorization on (`blockd
//! serve --nbd-auth`) that secret is the only export name that reaches the
//! volume (or its tenant's TLS client certificate). Detaching removes it and
//! calls the revocation hook, which closes the connections opened with it.
//! Every dialect's attach answer carries [`NbdAccess::connection_info`].
//!
//! The API crate knows nothing of the NBD server: the binary hands it the
//! listeners' addresses and a revocation hook.

use crate::meta;
use engine::{ObjectId, ObjectInfo};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Closes the NBD connections of a revoked attachment.
pub type RevokeHook = Arc<dyn Fn(ObjectId) + Send + Sync>;

/// Where the NBD server listens and whether it checks attachments.
#[derive(Clone)]
pub struct NbdAccess {
    /// The TCP listener, if any.
    pub tcp: Option<SocketAddr>,
    /// The Unix socket, if any.
    pub unix: Option<PathBuf>,
    /// Clients must use STARTTLS.
    pub tls_required: bool,
    /// The server admits clients only by attachment secret or certificate.
    pub auth: bool,
    /// Called after an attachment's secret is removed.
    pub revoke: RevokeHook,
}

impl std::fmt::Debug for NbdAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbdAccess")
            .field("tcp", &self.tcp)
            .field("unix", &self.unix)
            .field("tls_required", &self.tls_required)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// A fresh attachment secret: 256 random bits, as an export name.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("att-{}", hex::encode(b))
}

/// The export name that reaches `o` through its attachment: the secret,
/// or the volume's id where the volume has none (attached before
/// attachments carried secrets).
pub fn export_name(o: &ObjectInfo) -> String {
    meta::get(o, meta::NBD_SECRET)
        .map(str::to_string)
        .unwrap_or_else(|| o.id.to_string())
}

impl NbdAccess {
    /// The NBD URIs that reach `o` through its attachment: over TCP when
    /// the server listens on TCP, and over the Unix socket.
    fn uris(&self, export: &str) -> (Option<String>, Option<String>) {
        let tcp = self.tcp.map(|a| {
            let scheme = if self.tls_required { "nbds" } else { "nbd" };
            // SocketAddr's Display brackets IPv6 addresses.
            format!("{scheme}://{a}/{export}")
        });
        let unix = self.unix.as_ref().map(|p| {
            let scheme = if self.tls_required {
                "nbds+unix"
            } else {
                "nbd+unix"
            };
            format!("{scheme}:///{export}?socket={}", p.display())
        });
        (tcp, unix)
    }

    /// The one URI a client should use for `o`: TCP if served, else the
    /// Unix socket.
    pub fn uri(&self, o: &ObjectInfo) -> Option<String> {
        let (tcp, unix) = self.uris(&export_name(o));
        tcp.or(unix)
    }

    /// The connection information for the attachment of `o`, in the shape
    /// of Cinder's `connection_info` (`driver_volume_type` and `data`).
    pub fn connection_info(&self, o: &ObjectInfo) -> Value {
        let export = export_name(o);
        let (tcp, unix) = self.uris(&export);
        let mut data = json!({
            "export_name": export,
            "tls": self.tls_required,
            "access_mode": "rw",
        });
        if let (Some(a), Some(uri)) = (self.tcp, tcp) {
            data["host"] = json!(a.ip().to_string());
            data["port"] = json!(a.port());
            data["uri"] = json!(uri);
        }
        if let (Some(p), Some(uri)) = (&self.unix, unix) {
            data["socket"] = json!(p.display().to_string());
            data["unix_uri"] = json!(uri);
        }
        let uris: Vec<Value> = [&data["uri"], &data["unix_uri"]]
            .into_iter()
            .filter(|u| u.is_string())
            .cloned()
            .collect();
        data["uris"] = Value::Array(uris);
        json!({"driver_volume_type": "nbd", "data": data})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(a.starts_with("att-"));
    }
}
