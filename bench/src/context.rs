//! What every run of the benchmark shares: the hookline binary, pinning, the load's shape, the
//! signing key and the scratch directory. main builds it from the arguments; the runs read it.

use std::path::PathBuf;

use hookline::signature::Signer;

use crate::child::ScratchDir;
use crate::load::{self, Prepared};

/// What every run needs: where hookline is, how to pin, the load's shape, the signing key.
#[derive(Debug)]
pub struct Context {
    /// The hookline executable.
    pub hookline: PathBuf,
    /// Core for server processes, when pinning.
    pub server_core: Option<usize>,
    /// Concurrent connections.
    pub connections: usize,
    /// Measured requests per server.
    pub requests: usize,
    /// Warm-up requests per server.
    pub warmup: usize,
    /// The `whsec_` key hookline is configured with.
    pub secret: String,
    /// Signs the requests.
    pub signer: Signer,
    /// Data directories and logs of this run.
    pub scratch: ScratchDir,
    /// Makes message ids unique across runs (process id and time).
    pub nonce: String,
}

impl Context {
    /// Signs the warm-up and measured requests of one server's run.
    pub fn prepare(&self, label: &str) -> Vec<Prepared> {
        let prefix = format!("{}-{label}", self.nonce);
        load::prepare(self.warmup + self.requests, &prefix, &self.signer)
    }
}
