//! The `hookline` command: the library's command line (`hookline::cli`), on mimalloc.

use std::process::ExitCode;

/// mimalloc: measurably less time in allocation and free than the system allocator on the
/// request path (docs/performance-log.md, "The request path").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hookline::cli::main()
}
