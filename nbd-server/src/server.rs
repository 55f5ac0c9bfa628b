//! The NBD server: TCP and Unix listeners, a bound on connections, a
//! handshake timeout (covering the STARTTLS upgrade), and graceful shutdown
//! (stop accepting, let every connection finish the requests it has in
//! flight, then return so the caller can flush and close the store).

use crate::access::{AccessPolicy, Client, Grant, Revoker};
use crate::codec::ExportParams;
use crate::export::{Export, Exports};
use crate::session::{self, Negotiated, Stream};
use crate::Error;
use engine::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// Server limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Time allowed from accept to the end of negotiation.
    pub handshake_timeout: Duration,
    /// Most requests in flight per connection.
    pub max_in_flight: usize,
    /// Most engine calls running at once, server-wide.
    pub engine_threads: usize,
    /// Export served for the empty name.
    pub default_export: Option<String>,
    /// STARTTLS setup; `None` answers STARTTLS with ERR_POLICY.
    pub tls: Option<crate::Tls>,
    /// Authorization; `None` serves every object to every client.
    pub access: Option<AccessPolicy>,
    /// Each volume's I/O limits (`throttle.rs`); `None`: unthrottled.
    pub limits: Option<crate::LimitsHook>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            max_in_flight: 128,
            engine_threads: 64,
            default_export: None,
            tls: None,
            access: None,
            limits: None,
        }
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) exports: Exports,
    pub(crate) config: Config,
    pub(crate) engine_slots: Arc<Semaphore>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Large payload and reply buffers, recycled.
    pub(crate) bufs: Arc<crate::bufpool::BufPool>,
    /// Per-volume request counters.
    pub(crate) metrics: Arc<crate::metrics::NbdMetrics>,
    /// Connections opened through attachment secrets, for revocation.
    pub(crate) revoker: Revoker,
    /// Per-volume I/O throttles.
    pub(crate) throttles: crate::throttle::Throttles,
}

/// An NBD server over one store. Cheap to share; must be used inside a
/// tokio runtime.
pub struct Server {
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    conn_slots: Arc<Semaphore>,
}

impl Server {
    /// A server for `store` with `config`.
    pub fn new(store: Store, config: Config) -> Arc<Server> {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let conn_slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        Arc::new(Server {
            shared: Arc::new(Shared {
                exports: Exports::new(
                    store.clone(),
                    config.default_export.clone(),
                    config.access.clone(),
                ),
                throttles: crate::throttle::Throttles::new(config.limits.clone()),
                store,
                engine_slots: Arc::new(Semaphore::new(config.engine_threads.max(1))),
                config,
                shutdown,
                bufs: Arc::default(),
                metrics: Arc::default(),
                revoker: Revoker::default(),
            }),
            shutdown_tx,
            conn_slots,
        })
    }

    /// The per-volume request counters, for exposing as metrics.
    pub fn metrics(&self) -> Arc<crate::metrics::NbdMetrics> {
        self.shared.metrics.clone()
    }

    /// The handle that closes connections whose attachment is revoked.
    pub fn revoker(&self) -> Revoker {
        self.shared.revoker.clone()
    }

    /// Binds a TCP listener.
    pub async fn bind_tcp(addr: &str) -> Result<TcpListener, Error> {
        TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Bind(addr.to_string(), e))
    }

    /// Binds a Unix socket, replacing a stale socket file.
    pub fn bind_unix(path: &Path) -> Result<UnixListener, Error> {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if m.file_type().is_socket() {
                let _ = std::fs::remove_file(path);
            }
        }
        UnixListener::bind(path).map_err(|e| Error::Bind(path.display().to_string(), e))
    }

    /// Accepts TCP connections until shutdown.
    pub fn serve_tcp(self: &Arc<Self>, l: TcpListener) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut stop = me.shared.shutdown.clone();
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    r = l.accept() => match r {
                        Ok((s, peer)) => {
                            let _ = s.set_nodelay(true);
                            tune(&s);
                            me.spawn_conn(s, peer.to_string());
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            }
        })
    }

    /// Accepts Unix socket connections until shutdown.
    pub fn serve_unix(self: &Arc<Self>, l: UnixListener) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut stop = me.shared.shutdown.clone();
            loop {
                tokio::select! {
                    _ = stopped(&mut stop) => break,
                    r = l.accept() => match r {
                        Ok((s, _)) => {
                            tune(&s);
                            me.spawn_conn(s, "unix".to_string());
                        }
                        Err(e) => accept_error(e).await,
                    }
                }
            }
        })
    }

    fn spawn_conn<S: Stream>(self: &Arc<Self>, s: S, peer: String) {
        let Ok(permit) = self.conn_slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = self.shared.config.max_connections, "too many connections: refusing");
            drop(s);
            return;
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut stop = shared.shutdown.clone();
            let neg = tokio::select! {
                _ = stopped(&mut stop) => return,
                r = tokio::time::timeout(shared.config.handshake_timeout, negotiate(s, &shared, &peer)) => r,
            };
            let (export, serve) = match neg {
                Err(_) => {
                    tracing::info!(%peer, "handshake timed out: closing");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "handshake ended");
                    return;
                }
                Ok(Ok(Conn::Close)) => return,
                Ok(Ok(Conn::Plain(s, export, params))) => {
                    tracing::debug!(%peer, export = %export.id, grant = ?export.grant, "client connected");
                    let e = export.clone();
                    (
                        e,
                        Box::pin(session::transmit(s, export, params, shared.clone())) as Serving,
                    )
                }
                Ok(Ok(Conn::Tls(s, export, params))) => {
                    tracing::debug!(%peer, export = %export.id, grant = ?export.grant, "client connected over TLS");
                    let e = export.clone();
                    (
                        e,
                        Box::pin(session::transmit(*s, export, params, shared.clone())) as Serving,
                    )
                }
            };
            let r = if export.grant == Grant::Attachment {
                // Detaching revokes the secret: close this connection.
                let reg = shared.revoker.register(export.id);
                tokio::select! {
                    r = serve => r,
                    _ = reg.revoked.notified() => {
                        tracing::info!(%peer, export = %export.id, "attachment revoked: closing");
                        Ok(())
                    }
                }
            } else {
                serve.await
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }

    /// Stops accepting, lets connections finish their in-flight requests
    /// (waiting at most `grace`), and returns. Flushing the store is the
    /// caller's (it owns the store).
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shutdown_tx.send(true);
        let all = self.shared.config.max_connections.max(1) as u32;
        if tokio::time::timeout(grace, self.conn_slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period");
        }
    }
}

/// A connection's transmission phase.
type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>>;

/// A negotiated connection, ready for transmission.
enum Conn<S> {
    /// In plaintext.
    Plain(S, Export, ExportParams),
    /// Upgraded by STARTTLS.
    Tls(Box<TlsStream<S>>, Export, ExportParams),
    /// Nothing to serve: close.
    Close,
}

/// The whole handshake: greeting, option haggling, and (after STARTTLS)
/// the TLS handshake and option haggling again from a clean state.
async fn negotiate<S: Stream>(mut s: S, shared: &Shared, peer: &str) -> Result<Conn<S>, Error> {
    let Some(no_zeroes) = session::greet(&mut s).await? else {
        return Ok(Conn::Close);
    };
    match session::negotiate(&mut s, shared, no_zeroes, false, &Client::Anonymous).await? {
        Negotiated::Close => Ok(Conn::Close),
        Negotiated::Transmit(e, p) => Ok(Conn::Plain(s, e, p)),
        Negotiated::StartTls => {
            let Some(tls) = shared.config.tls.as_ref() else {
                return Ok(Conn::Close);
            };
            let mut t = match tls.acceptor.accept(s).await {
                Ok(t) => t,
                Err(e) => {
                    // Too late to go on in plaintext: the ACK was sent.
                    tracing::info!(%peer, error = %e, "TLS handshake failed: closing");
                    return Ok(Conn::Close);
                }
            };
            let version = t.get_ref().1.protocol_version();
            // Only a verified certificate is presented (rustls checked it
            // against the client CA during the handshake).
            let client = t
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map_or(Client::Anonymous, |c| Client::from_certificate(c));
            tracing::debug!(%peer, ?version, ?client, "connection upgraded to TLS");
            match session::negotiate(&mut t, shared, no_zeroes, true, &client).await? {
                Negotiated::Transmit(e, p) => Ok(Conn::Tls(Box::new(t), e, p)),
                Negotiated::StartTls | Negotiated::Close => Ok(Conn::Close),
            }
        }
    }
}

/// Larger socket buffers: fewer wakeups for deep pipelines of large I/O.
fn tune<S: std::os::fd::AsFd>(s: &S) {
    let r = socket2::SockRef::from(s);
    let _ = r.set_send_buffer_size(4 << 20);
    let _ = r.set_recv_buffer_size(4 << 20);
}

async fn accept_error(e: std::io::Error) {
    // EMFILE and friends: back off instead of spinning.
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Resolves once shutdown has been signalled.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
