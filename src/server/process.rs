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

/// Installs the global log subscriber: `config.filter`, as text or JSON lines on stdout. With
/// JSON, a panic is logged as a JSON line too (see [`log_panic`]).
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
        LogFormat::Json => {
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .init();
            std::panic::set_hook(Box::new(log_panic));
        }
    }
}

/// The panic hook with JSON logs: the panic as an `error` line of target `hookline::panic`,
/// instead of the default hook's plain text on stderr that a log shipper cannot parse. It runs
/// on the panicking thread, so a panic while a request is handled carries the request's span
/// (a panic there is also answered 500 and counted, see `panics.rs`).
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let thread = std::thread::current();
    // Only when RUST_BACKTRACE asks for one, as the default hook does.
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
        .then(|| backtrace.to_string());
    tracing::error!(
        target: "hookline::panic",
        panic = super::panics::message(info.payload()),
        location,
        thread = thread.name().unwrap_or("unnamed"),
        backtrace,
        "panicked"
    );
}
