//! The `hookline` command line: what the binary's `main` runs. It parses the arguments (defined
//! in `args.rs`, where each command's help lists the environment variables it reads), loads the
//! configuration, and calls the library: the server, the admin API's client, the sender.

mod args;
mod check;
mod inbox;
mod inspect;
mod send;

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::admin_client;
use crate::config::Config;
use crate::server::{process, ServerBuilder};
use args::{Cli, Command, Configured, Standalone};

/// Runs the command line with the process's arguments and environment.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Standalone(Standalone::Completions { shell }) => return completions(shell),
        Command::Standalone(Standalone::Man { out_dir }) => return man(out_dir.as_deref()),
        Command::Configured(command) => command,
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match process::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hookline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(command, config))
}

async fn run(command: Configured, config: Config) -> ExitCode {
    match command {
        Configured::Serve => serve(config).await,
        Configured::CheckConfig => check::check_config(config).await,
        Configured::Healthcheck => {
            if admin_client::ready(&config).await {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Configured::Events(command) => inspect::events(&config, command).await,
        Configured::Replay(command) => inspect::replay(&config, command).await,
        Configured::Blocked(command) => inspect::blocked(&config, command).await,
        Configured::Send(command) => send::send(&config, command).await,
        Configured::Backup { file } => inbox::backup(&config, &file),
        Configured::Restore { file } => inbox::restore(&config, &file),
        Configured::Migrate => inbox::migrate(&config).await,
    }
}

async fn serve(config: Config) -> ExitCode {
    process::init_logging(&config.log);
    let drain = config.shutdown_drain;
    let server = match ServerBuilder::new(config).start().await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    server.drain_and_stop(drain).await;
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// `hookline completions <shell>`: the completion script, from the same definitions as the
/// parser.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "hookline",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}

/// `hookline man [--out-dir DIR]`: the man page on stdout, or every command's page into `DIR`.
fn man(out_dir: Option<&std::path::Path>) -> ExitCode {
    let command = Cli::command();
    let written = match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(command, dir))
        }
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookline: cannot write the man page: {e}");
            ExitCode::FAILURE
        }
    }
}
