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
    std::process::exit(cli::main());
}
