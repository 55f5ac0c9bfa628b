//! NBD authorization: who may open which export.
//!
//! Without an enforced [`AccessPolicy`] every object is reachable by its id
//! or unique name (the historical behaviour, right for a loopback-only or
//! Unix-socket-only server), and attachment secrets work too. With one, a
//! client reaches an object only
//!
//! - through an **attachment secret**: an export name equal to the value
//!   an object holds under the policy's `secret_key` metadata key (the API
//!   writes it when a volume is attached and removes it on detach, and
//!   calls [`Revoker::revoke`] so connections opened with it close); or
//! - as a **tenant** named by its verified TLS client certificate (the
//!   certificate's subject common name): then by id or unique name, only
//!   objects whose `tenant_key` metadata names that tenant.
//!
//! Everything else gets the answer an unknown export gets, so a client
//! cannot tell a guessed name from a missing object. LIST shows a tenant
//! its own objects and shows anonymous clients nothing.

use engine::ObjectId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The metadata keys authorization reads, and whether it is enforced.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// Metadata key holding an object's current attachment secret.
    pub secret_key: String,
    /// Metadata key naming an object's tenant.
    pub tenant_key: String,
    /// When false, attachment secrets open their objects and everything
    /// else is open as without a policy.
    pub enforce: bool,
}

/// Who a connection is, as far as authorization goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// No verified identity (plaintext, or TLS without a client certificate).
    Anonymous,
    /// The tenant a verified client certificate names.
    Tenant(String),
}

impl Client {
    /// The identity a verified client certificate (DER) gives: its subject
    /// common name, when it has exactly one printable one.
    pub fn from_certificate(der: &[u8]) -> Client {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return Client::Anonymous;
        };
        let mut names = cert.subject().iter_common_name();
        match (names.next().and_then(|n| n.as_str().ok()), names.next()) {
            (Some(cn), None) if !cn.is_empty() => Client::Tenant(cn.to_string()),
            _ => Client::Anonymous,
        }
    }
}

/// How a connection was granted its export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// No policy: open to whoever reaches the listener.
    Open,
    /// Through an attachment secret (revocable).
    Attachment,
    /// As the object's tenant, by client certificate.
    Tenant,
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Closes connections whose attachment was revoked. Cheap to clone.
#[derive(Clone, Default)]
pub struct Revoker {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    conns: HashMap<u64, (ObjectId, Arc<Notify>)>,
}

/// A connection's registration; dropping it unregisters.
pub(crate) struct Registration {
    revoker: Revoker,
    key: u64,
    /// Notified when the connection's attachment is revoked.
    pub(crate) revoked: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut r) = self.revoker.inner.lock() {
            r.conns.remove(&self.key);
        }
    }
}

impl Revoker {
    /// Registers a connection that reached `id` through an attachment.
    pub(crate) fn register(&self, id: ObjectId) -> Registration {
        let revoked = Arc::new(Notify::new());
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.next += 1;
        let key = r.next;
        r.conns.insert(key, (id, revoked.clone()));
        Registration {
            revoker: self.clone(),
            key,
            revoked,
        }
    }

    /// Closes every connection that reached `id` through an attachment
    /// secret; returns how many were told to close.
    pub fn revoke(&self, id: ObjectId) -> usize {
        let r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (obj, notify) in r.conns.values() {
            if *obj == id {
                // notify_one stores a permit: no wakeup is lost.
                notify.notify_one();
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn revoke_reaches_only_that_object() {
        let r = Revoker::default();
        let (x, y) = (ObjectId::new_random(), ObjectId::new_random());
        let a = r.register(x);
        let b = r.register(y);
        assert_eq!(r.revoke(x), 1);
        drop(a);
        assert_eq!(r.revoke(x), 0);
        assert_eq!(r.revoke(y), 1);
        drop(b);
    }
}
