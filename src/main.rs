//! The `blockd` command: `serve` runs the front ends; the other commands work
//! offline on the same data directory (volumes, snapshots, clones, import,
//! export, check, stats), or, while `serve` runs, through its admin socket.
//! Exit codes: 0 success, 1 problems found by `check` or `scrub`, 2 bad
//! input or a failed operation, 3 refused by the API's rules (an attached
//! volume), 4 over a tenant's quota (one line on stderr).

mod admin;
mod cli;
mod metrics;
mod objects;
mod scrubber;
mod serve;
mod tier;

fn main() {
    limit_malloc_arenas();
    std::process::exit(cli::main());
}

/// glibc gives threads that allocate at the same time arenas of their own
/// (up to eight per core) and keeps what is freed in each. Under a burst of
/// writers waiting on the store, the blocking pool's threads each grew one:
/// a snapshotted 16 GiB volume overwritten at random took `blockd serve`
/// from 190 MiB to 3.3 GB (`benches/overwrite-rss.sh 16G`); with two
/// arenas it peaked at 717 MiB. So at most one arena per core, unless
/// `MALLOC_ARENA_MAX` says otherwise.
#[allow(unsafe_code)] // the one call into libc here, see SAFETY below
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(cores.max(2)).unwrap_or(i32::MAX);
        // SAFETY: mallopt only tunes the allocator; this runs first in
        // main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
