//! The dialect's own in-memory state: background tasks (image imports)
//! with their status for `GET /api/task/<task_id>/status/`, the image
//! names reserved by running imports, and the import configuration (the
//! `file://` directory and the file size cap).
//!
//! **Invariant:** tasks live in memory only: after a restart their ids
//! are unknown (404) and an import that was running has left nothing but
//! a hidden temporary volume, which [`State::configure`] deletes at start.
//! Everything a finished task made is in the engine.

use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Finished tasks kept for status queries (oldest dropped first).
const MAX_FINISHED: usize = 1024;

/// Default cap on an imported image file (compressed or not): 64 GiB.
pub const DEFAULT_MAX_IMPORT: u64 = 64 << 30;

/// Where a task stands.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Still running.
    Pending,
    /// Done: its result.
    Success(Value),
    /// Failed: its result (a message).
    Failure(Value),
}

#[derive(Debug)]
struct Task {
    tenant: String,
    seq: u64,
    outcome: Outcome,
}

/// Import settings.
#[derive(Debug, Clone)]
pub(crate) struct ImportConfig {
    /// The only directory `file://` URLs may point into (None: file:// refused).
    pub dir: Option<PathBuf>,
    /// Largest image file accepted, in bytes.
    pub max_file: u64,
}

/// The dialect's state, one per [`crate::ApiState`].
#[derive(Debug)]
pub(crate) struct State {
    config: Mutex<ImportConfig>,
    tasks: Mutex<BTreeMap<String, Task>>,
    /// (tenant, image name) pairs held by running imports.
    reserved: Mutex<BTreeSet<(String, String)>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Default for State {
    fn default() -> Self {
        State {
            config: Mutex::new(ImportConfig {
                dir: None,
                max_file: DEFAULT_MAX_IMPORT,
            }),
            tasks: Mutex::new(BTreeMap::new()),
            reserved: Mutex::new(BTreeSet::new()),
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl State {
    /// Sets the import directory and file cap, and deletes the temporary
    /// volumes imports interrupted by a crash left behind.
    pub fn configure(&self, store: &engine::Store, dir: Option<PathBuf>, max_file: u64) {
        *self.config.lock() = ImportConfig { dir, max_file };
        for o in store.list() {
            if o.metadata.contains_key(crate::meta::IMPORT_TMP) {
                if let Err(e) = store.delete(o.id) {
                    tracing::warn!(volume = %o.id, error = %e, "danube: cannot delete a stale import volume");
                } else {
                    tracing::info!(volume = %o.id, "danube: deleted a stale import volume");
                }
            }
        }
    }

    /// The import settings.
    pub fn config(&self) -> ImportConfig {
        self.config.lock().clone()
    }

    /// A new pending task of `tenant`; returns its id.
    pub fn start(&self, tenant: &str) -> String {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{tenant}-{}", uuid::Uuid::new_v4());
        let mut tasks = self.tasks.lock();
        tasks.insert(
            id.clone(),
            Task {
                tenant: tenant.to_string(),
                seq,
                outcome: Outcome::Pending,
            },
        );
        // Forget the oldest finished tasks beyond the cap.
        let finished = tasks
            .values()
            .filter(|t| !matches!(t.outcome, Outcome::Pending))
            .count();
        if finished > MAX_FINISHED {
            let mut old: Vec<(u64, String)> = tasks
                .iter()
                .filter(|(_, t)| !matches!(t.outcome, Outcome::Pending))
                .map(|(k, t)| (t.seq, k.clone()))
                .collect();
            old.sort();
            for (_, k) in old.into_iter().take(finished - MAX_FINISHED) {
                tasks.remove(&k);
            }
        }
        id
    }

    /// Records the end of task `id`.
    pub fn finish(&self, id: &str, outcome: Outcome) {
        if let Some(t) = self.tasks.lock().get_mut(id) {
            t.outcome = outcome;
        }
    }

    /// Task `id`'s outcome, if it exists and belongs to `tenant`.
    pub fn outcome(&self, id: &str, tenant: &str) -> Option<Outcome> {
        self.tasks
            .lock()
            .get(id)
            .filter(|t| t.tenant == tenant)
            .map(|t| t.outcome.clone())
    }

    /// The ids of `tenant`'s running tasks, oldest first.
    pub fn pending(&self, tenant: &str) -> Vec<String> {
        let tasks = self.tasks.lock();
        let mut v: Vec<(u64, String)> = tasks
            .iter()
            .filter(|(_, t)| t.tenant == tenant && matches!(t.outcome, Outcome::Pending))
            .map(|(k, t)| (t.seq, k.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, k)| k).collect()
    }

    /// The number of running tasks.
    pub fn n_pending(&self) -> usize {
        self.tasks
            .lock()
            .values()
            .filter(|t| matches!(t.outcome, Outcome::Pending))
            .count()
    }

    /// Reserves `tenant`'s image name for an import (names are per
    /// tenant); false when already reserved.
    pub fn reserve(&self, tenant: &str, name: &str) -> bool {
        self.reserved
            .lock()
            .insert((tenant.to_string(), name.to_string()))
    }

    /// True while an import of `tenant` holds `name`.
    pub fn is_reserved(&self, tenant: &str, name: &str) -> bool {
        self.reserved
            .lock()
            .contains(&(tenant.to_string(), name.to_string()))
    }

    /// Frees a reserved name.
    pub fn release(&self, tenant: &str, name: &str) {
        self.reserved
            .lock()
            .remove(&(tenant.to_string(), name.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_per_tenant_and_bounded() {
        let s = State::default();
        let id = s.start("a");
        assert!(matches!(s.outcome(&id, "a"), Some(Outcome::Pending)));
        assert!(s.outcome(&id, "b").is_none());
        assert_eq!(s.pending("a"), vec![id.clone()]);
        assert_eq!(s.n_pending(), 1);
        s.finish(&id, Outcome::Success(Value::Null));
        assert!(matches!(s.outcome(&id, "a"), Some(Outcome::Success(_))));
        assert!(s.pending("a").is_empty());
        for _ in 0..MAX_FINISHED + 10 {
            let t = s.start("a");
            s.finish(&t, Outcome::Failure(Value::Null));
        }
        assert!(s.tasks.lock().len() <= MAX_FINISHED + 1);
        assert!(s.reserve("a", "x"));
        assert!(!s.reserve("a", "x"));
        assert!(s.is_reserved("a", "x"));
        assert!(!s.is_reserved("b", "x"));
        assert!(s.reserve("b", "x"));
        s.release("a", "x");
        assert!(s.reserve("a", "x"));
    }
}
