//! The online scrub of `blockd serve`: a thread that re-reads and verifies
//! every live chunk and metadata page, throttled, on an interval and on
//! demand (SIGUSR1), logging each damaged item by object and offset.

use engine::{ByteSize, Store};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Handle on the scrub thread; dropping it stops the thread after the
/// scrub in progress, if any.
pub struct Scrubber {
    tx: mpsc::Sender<()>,
}

impl Scrubber {
    /// Starts the thread: a scrub every `interval` (never when `None`) and
    /// on each [`Scrubber::trigger`], reading at most `rate` bytes/s.
    pub fn start(store: Store, interval: Option<Duration>, rate: u64) -> Scrubber {
        let (tx, rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("blockd-scrub".into())
            .spawn(move || loop {
                let go = match interval {
                    Some(d) => match rx.recv_timeout(d) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => true,
                        Err(RecvTimeoutError::Disconnected) => false,
                    },
                    None => rx.recv().is_ok(),
                };
                if !go {
                    break;
                }
                run_once(&store, rate);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the scrub thread: {e}");
        }
        Scrubber { tx }
    }

    /// Asks for a scrub now (queued behind one in progress).
    pub fn trigger(&self) {
        let _ = self.tx.send(());
    }
}

fn run_once(store: &Store, rate: u64) {
    tracing::info!(rate = %ByteSize(rate), "scrub started");
    match store.scrub(Some(rate)) {
        Ok(r) => {
            for e in &r.errors {
                tracing::error!("scrub: damaged: {e}");
            }
            tracing::info!(
                "scrub finished: {} data chunks and {} metadata pages verified ({}), {} errors",
                r.chunks_verified,
                r.pages_verified,
                ByteSize(r.bytes_read),
                r.errors.len()
            );
        }
        Err(e) => tracing::error!("scrub failed: {e}"),
    }
}
