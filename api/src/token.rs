//! Stateless API tokens, as the minimal Keystone (`keystone/`) issues them
//! and the Cinder endpoints (`cinder/`) accept them as `X-Auth-Token`:
//! `bdt1.<claims>.<mac>`, the claims (tenant, issue and expiry times, audit
//! id, auth methods) base64url-encoded and signed with HMAC-SHA256 under a
//! key drawn at random when the server starts. Nothing is stored: a token
//! is valid while its MAC checks and it has not expired, and every token
//! dies with the process that signed it (a restart draws a new key).
//!
//! Tokens are secrets: never log them ([`Claims`] holds none of the token's
//! bytes but the audit id, which Keystone shows clients anyway).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::hmac;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a token lives.
pub const TOKEN_LIFETIME: Seconds = Seconds(3600);

/// Token text prefix, naming the format version.
const PREFIX: &str = "bdt1";

/// A duration in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u64);

/// A point in time: whole seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// Now.
    pub fn now() -> UnixTime {
        UnixTime(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    /// This time plus `d`.
    pub fn plus(self, d: Seconds) -> UnixTime {
        UnixTime(self.0.saturating_add(d.0))
    }

    /// ISO 8601 as Keystone writes it: `2026-12-06T21:00:00.000000Z`.
    pub fn iso8601(self) -> String {
        format!(
            "{}.000000Z",
            crate::meta::format_time(self.0).replace(' ', "T")
        )
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The tenant (Keystone project, and its one user) it speaks for.
    pub tenant: String,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops being valid.
    pub expires_at: UnixTime,
    /// Random id shared by a token and the tokens rescoped from it.
    pub audit_id: String,
    /// How the first token of the chain was obtained ("password", ...).
    pub methods: Vec<String>,
}

/// The signing key of one server run.
pub struct TokenKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl Default for TokenKey {
    fn default() -> Self {
        TokenKey::random()
    }
}

/// A random audit id: 16 bytes, base64url (22 characters, as Keystone's).
pub fn new_audit_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

impl TokenKey {
    /// A fresh random key.
    pub fn random() -> TokenKey {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        TokenKey::from_bytes(&b)
    }

    /// A key from fixed bytes (tests).
    pub fn from_bytes(bytes: &[u8]) -> TokenKey {
        TokenKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// The token text for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = format!(
            "{}|{}|{}|{}|{}",
            claims.tenant,
            claims.issued_at.0,
            claims.expires_at.0,
            claims.audit_id,
            claims.methods.join(",")
        );
        let body = format!("{PREFIX}.{}", B64.encode(payload.as_bytes()));
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", B64.encode(tag.as_ref()))
    }

    /// The claims of `token` if this key signed it and it has not expired
    /// at `now`; `None` for anything else (never a reason: callers answer
    /// one generic "invalid token").
    pub fn verify(&self, token: &str, now: UnixTime) -> Option<Claims> {
        let (body, tag) = token.rsplit_once('.')?;
        let payload = body.strip_prefix(PREFIX)?.strip_prefix('.')?;
        let tag = B64.decode(tag).ok()?;
        hmac::verify(&self.key, body.as_bytes(), &tag).ok()?;
        let payload = String::from_utf8(B64.decode(payload).ok()?).ok()?;
        let mut f = payload.split('|');
        let claims = Claims {
            tenant: f.next()?.to_string(),
            issued_at: UnixTime(f.next()?.parse().ok()?),
            expires_at: UnixTime(f.next()?.parse().ok()?),
            audit_id: f.next()?.to_string(),
            methods: f
                .next()?
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
        };
        if f.next().is_some() || now >= claims.expires_at {
            return None;
        }
        Some(claims)
    }

    /// A new token for `tenant`, valid [`TOKEN_LIFETIME`] from `now`.
    pub fn issue(&self, tenant: &str, methods: &[&str], now: UnixTime) -> (String, Claims) {
        let claims = Claims {
            tenant: tenant.to_string(),
            issued_at: now,
            expires_at: now.plus(TOKEN_LIFETIME),
            audit_id: new_audit_id(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
        };
        (self.sign(&claims), claims)
    }
}

/// True when `token` has the shape of a signed token (not a static secret).
pub fn is_signed_form(token: &str) -> bool {
    token.starts_with("bdt1.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let k = TokenKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let now = UnixTime(1_800_000_000);
        let (t, c) = k.issue("demo", &["password"], now);
        assert!(is_signed_form(&t));
        assert_eq!(k.verify(&t, now), Some(c.clone()));
        assert_eq!(c.expires_at, UnixTime(1_800_003_600));
        assert_eq!(k.verify(&t, UnixTime(1_800_003_599)), Some(c));
        assert_eq!(k.verify(&t, UnixTime(1_800_003_600)), None);
    }

    #[test]
    fn rejects_forgeries() {
        let k = TokenKey::from_bytes(b"k1");
        let other = TokenKey::from_bytes(b"k2");
        let now = UnixTime(1000);
        let (t, _) = k.issue("demo", &["password"], now);
        assert_eq!(other.verify(&t, now), None);
        // Claims swapped for another tenant's, old MAC kept.
        let (u, _) = k.issue("other", &["password"], now);
        let forged = format!(
            "{}.{}",
            u.rsplit_once('.').unwrap().0,
            t.rsplit_once('.').unwrap().1
        );
        assert_eq!(k.verify(&forged, now), None);
        for bad in ["", "bdt1", "bdt1..", "bdt1.x.y", "x.y.z", &t[..t.len() - 1]] {
            assert_eq!(k.verify(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(UnixTime(0).iso8601(), "1970-01-01T00:00:00.000000Z");
    }
}
