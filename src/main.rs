//! The `blockd` command: `serve` runs the front ends; the other commands work
//! offline on the same data directory (volumes, snapshots, clones, import,
//! export, check, stats). Exit codes: 0 success, 1 problems found by
//! `check`, 2 bad input or a failed operation (one line on stderr).

mod cli;
mod scrubber;
mod serve;

fn main() {
    std::process::exit(cli::main());
}
