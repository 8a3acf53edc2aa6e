//! What a process that serves hookline sets up before it starts the server: the async runtime
//! and the log subscriber. The `hookline` binary uses both, and so does the benchmark's server
//! that stores nothing, so that the two measure the same request path (docs/performance.md, "What one run measures").

use std::io::IsTerminal;

use crate::config::{LogConfig, LogFormat};

/// The multi-thread tokio runtime hookline serves on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Fair turns for connections under overload. A worker's run queue holds 256 tasks;
        // what overflows, and what other threads wake (acknowledgements after an fsync), waits
        // in the global queue, which tokio otherwise checks only every ~10 polls. With 4096
        // busy connections those waited while the run queue's went round again and again:
        // 503s took up to 0.74 s (p99), and half as many requests got in. Every other poll
        // serves them in turn; checking the global queue at every poll instead would starve
        // the run queue for as long as the overflow lasts (docs/performance-log.md, "Overload: fair turns for connections").
        .global_queue_interval(2)
        .build()
}

/// Installs the global log subscriber: `config.filter`, as text or JSON lines on stdout.
pub fn init_logging(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.filter).unwrap_or_else(|e| {
        eprintln!(
            "hookline: invalid log filter {:?} ({e}); using info",
            config.filter
        );
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colours only on a terminal: files and log shippers get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match config.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
