//! Fetching an http(s) URL on a tenant's behalf (image imports) without
//! letting a tenant use the server to reach what the tenant cannot reach:
//!
//! - the URL's host (and port) must be in the operator's allow-list
//!   (`blockd serve --image-import-allow HOST[:PORT]`; an entry without a
//!   port allows the scheme's default port only; no entries, no fetches);
//! - every address the host resolves to must be a public unicast address
//!   ([`is_public`]): loopback, link-local, private, unique-local,
//!   unspecified, multicast, broadcast, documentation, shared and reserved
//!   ranges are refused even when the name is allow-listed. The check runs
//!   inside ureq's resolver, so the connection goes to the very addresses
//!   checked (no second lookup a DNS rebinding could answer differently);
//! - redirects are followed here, not by ureq, at most [`MAX_REDIRECTS`],
//!   each hop checked like the first;
//! - what a tenant sees is one of two texts, [`REFUSED`] or [`FAILED`],
//!   never a status code, a connect error or anything else the far side
//!   answered; the details go to the server log, with the URL's
//!   credentials, query and fragment removed ([`redact`]).
//!
//! **Tests only:** [`ImportPolicy::allow_loopback_for_tests`] also lets
//! loopback addresses through (the test suite's file server listens on
//! 127.0.0.1). It has no effect in release builds.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::{Host, Url};

/// What a tenant is told when the policy refuses a source.
pub const REFUSED: &str = "import source refused";
/// What a tenant is told when an allowed source could not be read.
pub const FAILED: &str = "import failed";
/// Most redirects followed.
const MAX_REDIRECTS: usize = 3;
/// Connect timeout, and longest silence while reading.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One `--image-import-allow` entry: a host name or IP address, and
/// optionally a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// As `url` prints it: lower case, IPv6 in brackets.
    host: String,
    port: Option<u16>,
}

impl FromStr for AllowedHost {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not HOST or HOST:PORT");
        if s.is_empty() || s.contains(['/', '@', '?', '#', '\\']) || s.contains(char::is_whitespace)
        {
            return Err(bad());
        }
        // `[v6]`, `[v6]:port`, `name`, `name:port`.
        let (host, port) = match s.strip_prefix('[') {
            Some(rest) => {
                let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
                match tail {
                    "" => (format!("[{h}]"), None),
                    t => (format!("[{h}]"), Some(t.strip_prefix(':').ok_or_else(bad)?)),
                }
            }
            None => match s.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (s.to_string(), None),
            },
        };
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad))
            .transpose()?;
        let host = Host::parse(&host).map_err(|_| bad())?.to_string();
        Ok(AllowedHost { host, port })
    }
}

/// Which remote sources imports may read; the default refuses them all.
#[derive(Debug, Clone, Default)]
pub struct ImportPolicy {
    allow: Vec<AllowedHost>,
    loopback_for_tests: bool,
}

impl ImportPolicy {
    /// Sources on the hosts of `allow` (and nothing else).
    pub fn new(allow: Vec<AllowedHost>) -> Self {
        ImportPolicy {
            allow,
            loopback_for_tests: false,
        }
    }

    /// For the test suite only: also connect to loopback addresses (its
    /// file server listens on 127.0.0.1). Ignored in release builds.
    pub fn allow_loopback_for_tests(mut self) -> Self {
        self.loopback_for_tests = cfg!(debug_assertions);
        self
    }

    /// Whether the policy lets imports reach `url`'s host and port (by
    /// name: addresses are checked when connecting).
    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host().map(|h| h.to_string()) else {
            return false;
        };
        let port = url.port();
        let https_or_http = matches!(url.scheme(), "http" | "https");
        https_or_http
            && self.allow.iter().any(|a| {
                a.host == host
                    && match a.port {
                        None => port.is_none(),
                        Some(p) => url.port_or_known_default() == Some(p),
                    }
            })
    }

    /// Whether a connection to `ip` may be made.
    fn address_allowed(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.loopback_for_tests && ip.is_loopback())
    }

    /// Opens `url` for reading, following redirects; `overall` bounds the
    /// whole exchange. Errors are [`REFUSED`] or [`FAILED`] (details in
    /// the log).
    pub fn open(
        &self,
        url: &str,
        overall: Option<Duration>,
    ) -> Result<Box<dyn Read + Send>, String> {
        let deadline = overall.map(|d| Instant::now() + d);
        let mut url = Url::parse(url).map_err(|e| {
            tracing::warn!(error = %e, "import source: not a URL");
            REFUSED.to_string()
        })?;
        for _hop in 0..=MAX_REDIRECTS {
            let shown = redact(url.as_str());
            if !self.allows(&url) {
                tracing::warn!(url = %shown, "import source refused: host not allow-listed");
                return Err(REFUSED.into());
            }
            let refused = Arc::new(AtomicBool::new(false));
            let mut b = ureq::AgentBuilder::new()
                .try_proxy_from_env(false)
                .redirects(0)
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout_read(READ_TIMEOUT)
                .resolver(Checked {
                    policy: self.clone(),
                    refused: refused.clone(),
                });
            if let Some(d) = deadline {
                b = b.timeout(d.saturating_duration_since(Instant::now()));
            }
            match b.build().request_url("GET", &url).call() {
                Ok(r) if (300..400).contains(&r.status()) => {
                    let next = r.header("location").and_then(|l| url.join(l).ok());
                    let Some(next) = next else {
                        tracing::warn!(url = %shown, status = r.status(), "import source: redirect without a usable Location");
                        return Err(FAILED.into());
                    };
                    tracing::info!(url = %shown, to = %redact(next.as_str()), "import source redirects");
                    url = next;
                }
                Ok(r) => {
                    return Ok(Box::new(Quiet {
                        inner: r.into_reader(),
                        url: shown,
                    }))
                }
                Err(e) if refused.load(Ordering::Relaxed) => {
                    tracing::warn!(url = %shown, error = %describe(&e), "import source refused: address");
                    return Err(REFUSED.into());
                }
                Err(e) => {
                    tracing::warn!(url = %shown, error = %describe(&e), "import source failed");
                    return Err(FAILED.into());
                }
            }
        }
        tracing::warn!(url = %redact(url.as_str()), "import source: too many redirects");
        Err(FAILED.into())
    }
}

/// `e` for the log, without the URL ureq's own text carries (it may hold
/// credentials).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, _) => format!("HTTP status {code}"),
        ureq::Error::Transport(t) => {
            let source = std::error::Error::source(t)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            format!("{}: {}{source}", t.kind(), t.message().unwrap_or(""))
        }
    }
}

/// ureq's resolver: resolves, and refuses unless every address is allowed.
struct Checked {
    policy: ImportPolicy,
    refused: Arc<AtomicBool>,
}

impl ureq::Resolver for Checked {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if let Some(a) = addrs.iter().find(|a| !self.policy.address_allowed(a.ip())) {
            self.refused.store(true, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{netloc} resolves to {}, which is not a public address",
                    a.ip()
                ),
            ));
        }
        Ok(addrs)
    }
}

/// A body reader whose errors say [`FAILED`] (the detail is logged).
struct Quiet {
    inner: Box<dyn Read + Send>,
    url: String,
}

impl Read for Quiet {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            tracing::warn!(url = %self.url, error = %e, "import source: read failed");
            io::Error::other(FAILED)
        })
    }
}

/// `url` fit for a log: scheme, host, port and path; no credentials,
/// query or fragment.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => {
            let host = u.host().map(|h| h.to_string()).unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", u.scheme(), u.path())
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// Whether `ip` is a public unicast address, the only kind an import may
/// connect to. IPv4-mapped IPv6 addresses are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4_public(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4_public(v4),
            None => v6_public(a),
        },
    }
}

fn v4_public(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    let special = a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || o0 == 0 // "this network"
        || (o0 == 100 && (o1 & 0xc0) == 64) // shared address space, 100.64/10
        || (o0 == 192 && o1 == 0 && o2 == 0) // IETF protocol assignments
        || (o0 == 198 && (o1 & 0xfe) == 18) // benchmarking, 198.18/15
        || o0 >= 240; // reserved
    !special
}

/// Only global unicast (2000::/3) outside its special blocks: this leaves
/// out loopback, unspecified, link-local, unique-local (fc00::/7),
/// multicast, NAT64 and the IPv4-embedding 6to4 and Teredo prefixes.
fn v6_public(a: Ipv6Addr) -> bool {
    let s = a.segments();
    let global = (s[0] & 0xe000) == 0x2000;
    // 2001::/23 (Teredo among them) and 2001:db8::/32 (documentation).
    let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x3fff && s[1] < 0x1000); // documentation, 3fff::/20
    global && !special && !a.is_loopback() && !a.is_multicast() && !a.is_unique_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn special_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "2001::1",
            "2002:a9fe:a9fe::1",
            "fec0::1",
        ] {
            assert!(!is_public(ip(s)), "{s} counted as public");
        }
        for s in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip(s)), "{s} counted as special");
        }
    }

    #[test]
    fn loopback_only_for_tests() {
        let p = ImportPolicy::default();
        assert!(!p.address_allowed(ip("127.0.0.1")));
        let t = p.allow_loopback_for_tests();
        assert_eq!(t.address_allowed(ip("127.0.0.1")), cfg!(debug_assertions));
        assert!(!t.address_allowed(ip("169.254.169.254")));
        assert!(!t.address_allowed(ip("10.0.0.1")));
    }

    #[test]
    fn allow_list_entries() {
        let a = |s: &str| s.parse::<AllowedHost>();
        assert!(a("images.example.com").is_ok());
        assert!(a("Images.Example.COM:8080").is_ok());
        assert!(a("[2001:db8::1]:443").is_ok());
        for bad in [
            "", "h:", "h:0", "h:99999", "a/b", "u@h", "h:1:2", "[::1", "h x",
        ] {
            assert!(a(bad).is_err(), "{bad}");
        }
        let p = ImportPolicy::new(vec![
            a("images.example.com").unwrap_or_else(|e| panic!("{e}")),
            a("mirror.example.com:8080").unwrap_or_else(|e| panic!("{e}")),
            a("[2001:db8::1]").unwrap_or_else(|e| panic!("{e}")),
        ]);
        let ok = |u: &str| p.allows(&Url::parse(u).unwrap_or_else(|e| panic!("{u}: {e}")));
        assert!(ok("http://images.example.com/m"));
        assert!(ok("https://IMAGES.example.com/m"));
        assert!(ok("http://images.example.com:80/m"), "the default port");
        assert!(!ok("http://images.example.com:8080/m"), "another port");
        assert!(ok("http://mirror.example.com:8080/m"));
        assert!(!ok("http://mirror.example.com/m"));
        assert!(ok("http://[2001:db8::1]/m"));
        assert!(!ok("http://example.com/m"));
        assert!(!ok("http://images.example.com.evil.org/m"));
        assert!(!ok("ftp://images.example.com/m"));
        assert!(!ImportPolicy::default()
            .allows(&Url::parse("http://a/").unwrap_or_else(|e| panic!("{e}"))));
    }

    #[test]
    fn logs_carry_no_credentials() {
        assert_eq!(
            redact("https://user:s3cret@h.example:8443/img/m?token=abc#x"),
            "https://h.example:8443/img/m"
        );
        assert_eq!(redact("no url"), "(not a URL)");
    }

    #[test]
    fn refused_before_any_connection() {
        // Allow-listed by name, refused by address: no server needed, and
        // a listener would make no difference (see the black-box tests).
        for host in [
            "localhost",
            "127.0.0.1",
            "169.254.169.254",
            "10.9.8.7",
            "[::1]",
        ] {
            let p = ImportPolicy::new(vec![host.parse().unwrap_or_else(|e| panic!("{e}"))]);
            let r = p.open(&format!("http://{host}/m"), Some(Duration::from_secs(5)));
            assert_eq!(r.err().as_deref(), Some(REFUSED), "{host}");
        }
        let r = ImportPolicy::default().open("http://example.com/m", None);
        assert_eq!(r.err().as_deref(), Some(REFUSED));
    }
}
