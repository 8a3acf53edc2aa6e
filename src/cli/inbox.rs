//! Commands that act on the inbox itself rather than on a running server: `backup` and
//! `restore` for SQLite, `migrate` for PostgreSQL.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::store::{PostgresStore, SqliteStore};

/// `hookline backup <file>`: a consistent copy of the inbox, the server running or not.
pub(super) fn backup(config: &Config, file: &Path) -> ExitCode {
    if sqlite_only(config, "backup") {
        return ExitCode::from(2);
    }
    match SqliteStore::backup(&config.data_dir, file) {
        Ok(copied) => {
            println!(
                "backed up {} events ({} bytes) to {}",
                copied.events,
                copied.bytes,
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `hookline restore <file>`: the backup in place of the inbox, while no server runs.
pub(super) fn restore(config: &Config, file: &Path) -> ExitCode {
    if sqlite_only(config, "restore") {
        return ExitCode::from(2);
    }
    match SqliteStore::restore(&config.data_dir, file) {
        Ok(copied) => {
            println!(
                "restored {} events from {} into {}",
                copied.events,
                file.display(),
                config.data_dir.display()
            );
            if let Some(aside) = copied.set_aside {
                println!("the inbox it replaced is now {}", aside.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Says so and returns `true` when the configuration names PostgreSQL, whose backups are
/// PostgreSQL's own (`pg_dump`, base backups; docs/postgres.md).
fn sqlite_only(config: &Config, command: &str) -> bool {
    if config.store.url.is_none() {
        return false;
    }
    eprintln!(
        "hookline: {command} is for the SQLite inbox; this configuration uses PostgreSQL \
         (HOOKLINE_DATABASE_URL), whose backups are PostgreSQL's own: pg_dump or a base backup \
         (docs/postgres.md)"
    );
    true
}

/// `hookline migrate`: brings the PostgreSQL schema up to date, then exits.
pub(super) async fn migrate(config: &Config) -> ExitCode {
    let Some(url) = &config.store.url else {
        eprintln!(
            "hookline: migrate is for PostgreSQL (HOOKLINE_DATABASE_URL); \
             the SQLite inbox is brought up to date when serve opens it"
        );
        return ExitCode::from(2);
    };
    match PostgresStore::migrate(url).await {
        Ok(done) if done.from == done.to => {
            println!("{url}: schema at version {}, nothing to do", done.to)
        }
        Ok(done) => println!(
            "{url}: schema migrated from version {} to {}",
            done.from, done.to
        ),
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
