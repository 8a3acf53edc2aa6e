//! What every run of the benchmark shares: the hookline binary, pinning, the load's shape, the
//! signing keys and the scratch directory. main builds it from the arguments; the runs read it.

use std::path::PathBuf;

use crate::child::ScratchDir;
use crate::requests::{Ids, LoadShape, Prepared};

/// What every run needs: where hookline is, how to pin, the load's shape, the signing keys.
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
    /// The liveDesk signing secret hookline is configured with.
    pub livedesk_secret: String,
    /// What the requests are and how they are signed.
    pub shape: LoadShape,
    /// The kinds of provider ids to measure, ordered ones first.
    pub ids: Vec<Ids>,
    /// Data directories and logs of this run.
    pub scratch: ScratchDir,
    /// Makes message ids unique across runs (process id and time).
    pub nonce: String,
}

impl Context {
    /// Signs the warm-up and measured requests of one server's run, with `ids`.
    pub fn prepare(&self, label: &str, ids: Ids) -> Vec<Prepared> {
        self.prepare_n(self.warmup + self.requests, label, ids)
    }

    /// Signs `count` requests with `ids`, unique to `label` in this run.
    pub fn prepare_n(&self, count: usize, label: &str, ids: Ids) -> Vec<Prepared> {
        let prefix = format!("{}-{label}", self.nonce);
        self.shape.prepare(count, &prefix, ids)
    }
}
