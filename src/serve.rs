//! `blockd serve`: opens the store and serves it to front ends until SIGTERM
//! or SIGINT. (The NBD listener is added by the NBD issue's work.)

use anyhow::Result;
use std::path::Path;

/// Options of `blockd serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {}

/// Runs the server on the store in `data_dir`.
pub fn run(data_dir: &Path, _args: ServeArgs) -> Result<()> {
    anyhow::bail!(
        "serve is not available yet (data dir {})",
        data_dir.display()
    )
}
