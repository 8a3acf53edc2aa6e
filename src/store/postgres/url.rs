//! The database URL, `postgres://user:password@host:port/database?sslmode=require`: what the
//! driver connects with, how the connection is secured, and how it is shown, which is always
//! without its password.
//!
//! `sslmode` and `sslrootcert` are read here rather than by the driver, which knows neither
//! `verify-ca` nor `verify-full` nor root certificates (see [`super::tls`]). Everything else
//! (several `host:port` pairs, `target_session_attrs`, `options`, `application_name`,
//! `connect_timeout`, …) is the driver's, as libpq would read it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio_postgres::config::Host;

use super::error::describe;
use super::tls::{SslMode, TlsSettings};

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long sent data may stay unacknowledged before the kernel drops the connection: a
/// database host that vanished (failover, a cut network) fails the queries waiting on it in
/// this time instead of leaving them hanging.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time after which TCP keepalives probe the connection.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);

/// A PostgreSQL URL, checked when the configuration is read. `Debug` and `Display` show it
/// without its password (`postgres://hookline@db:5432/hookline?sslmode=require`).
#[derive(Clone)]
pub struct DatabaseUrl {
    /// The URL as given, password included: what [`Serialize`] writes back.
    raw: String,
    /// The driver's settings, TLS parameters taken out.
    driver: tokio_postgres::Config,
    /// How to secure the connection.
    tls: TlsSettings,
    /// The URL as shown.
    shown: String,
    /// What must never be shown: the password, as written and decoded.
    secrets: Vec<String>,
}

impl DatabaseUrl {
    /// The driver's settings: where to connect, as whom, with hookline's timeouts where the URL
    /// sets none.
    pub(super) fn driver(&self) -> &tokio_postgres::Config {
        &self.driver
    }

    /// How to secure the connection.
    pub(super) fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// `text` with every occurrence of the password replaced: for messages that quote what a
    /// driver or server said, in case one ever echoes it.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// The URL without its password: user, hosts, ports, database and TLS mode.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    /// Parses a URL; the error never quotes the password.
    fn from_str(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let secrets = password_of(raw);
        parse(raw, secrets.clone())
            .map_err(|e| redact(&format!("invalid PostgreSQL URL: {e}"), &secrets))
    }
}

/// The parsing behind [`DatabaseUrl::from_str`], whose errors may still quote the URL.
fn parse(raw: &str, secrets: Vec<String>) -> Result<DatabaseUrl, String> {
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(
            "expected postgres://user:password@host:port/database (or postgresql://…)".into(),
        );
    }
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut ssl_mode = None;
    let mut root_cert = None;
    let mut passed_on = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key).as_str() {
            "sslmode" => ssl_mode = Some(SslMode::parse(&percent_decode(value))?),
            "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value))),
            _ => passed_on.push(pair),
        }
    }
    let for_driver = match passed_on.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", passed_on.join("&")),
    };
    let mut driver = tokio_postgres::Config::from_str(&for_driver).map_err(|e| describe(&e))?;
    if driver.get_user().is_none_or(str::is_empty) {
        return Err("it names no user (postgres://user:password@host/database)".into());
    }
    if driver.get_hosts().is_empty() {
        return Err("it names no host (postgres://user:password@host/database)".into());
    }
    let tls = TlsSettings::new(ssl_mode.unwrap_or(SslMode::Prefer), root_cert);
    driver.ssl_mode(tls.mode().driver_mode());
    with_default_timeouts(&mut driver);
    let shown = shown(&driver, ssl_mode);
    Ok(DatabaseUrl {
        raw: raw.to_owned(),
        driver,
        tls,
        shown,
        secrets,
    })
}

/// hookline's connection timeouts, where the URL sets none, and its name in
/// `pg_stat_activity`.
fn with_default_timeouts(driver: &mut tokio_postgres::Config) {
    if driver.get_connect_timeout().is_none() {
        driver.connect_timeout(CONNECT_TIMEOUT);
    }
    if driver.get_tcp_user_timeout().is_none() {
        driver.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    driver.keepalives(true);
    driver.keepalives_idle(KEEPALIVES_IDLE);
    if driver.get_application_name().is_none() {
        driver.application_name("hookline");
    }
}

/// `postgres://user@host:port[,host:port…]/database[?sslmode=…]`.
fn shown(driver: &tokio_postgres::Config, ssl_mode: Option<SslMode>) -> String {
    let ports = driver.get_ports();
    let hosts: Vec<String> = driver
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(n, host)| {
            let port = ports.get(n).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let user = driver.get_user().unwrap_or_default();
    let database = driver.get_dbname().unwrap_or(user);
    let mut shown = format!("postgres://{user}@{}/{database}", hosts.join(","));
    if let Some(mode) = ssl_mode {
        shown.push_str(&format!("?sslmode={}", mode.as_str()));
    }
    shown
}

/// The password of a URL, as written and percent-decoded, found without trusting the URL to
/// parse: what error messages about it must not show.
fn password_of(raw: &str) -> Vec<String> {
    let rest = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let Some((user_info, _)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    let Some((_, password)) = user_info.split_once(':') else {
        return Vec::new();
    };
    let mut secrets = vec![password.to_owned(), percent_decode(password)];
    secrets.retain(|s| !s.is_empty());
    secrets.dedup();
    secrets
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret, "********")
    })
}

/// `%XX` escapes decoded (bytes that are not UTF-8 read as U+FFFD).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut n = 0;
    while n < bytes.len() {
        let escaped = (bytes[n] == b'%')
            .then(|| text.get(n + 1..n + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                n += 3;
            }
            None => {
                out.push(bytes[n]);
                n += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "postgres://hook%40line:pa%3Ass-w0rd@db.internal:6432/inbox?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=replica-1";

    #[test]
    fn the_driver_gets_everything_but_the_tls_parameters() {
        let url: DatabaseUrl = URL.parse().unwrap();
        let driver = url.driver();
        assert_eq!(driver.get_user(), Some("hook@line"));
        assert_eq!(driver.get_password(), Some(&b"pa:ss-w0rd"[..]));
        assert_eq!(driver.get_hosts(), [Host::Tcp("db.internal".into())]);
        assert_eq!(driver.get_ports(), [6432]);
        assert_eq!(driver.get_dbname(), Some("inbox"));
        assert_eq!(driver.get_application_name(), Some("replica-1"));
        assert_eq!(driver.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(url.tls().mode(), SslMode::VerifyFull);
        assert_eq!(url.tls().root_cert(), Some(&PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn it_is_shown_without_its_password() {
        let url: DatabaseUrl = URL.parse().unwrap();
        let expected = "postgres://hook@line@db.internal:6432/inbox?sslmode=verify-full";
        assert_eq!(url.to_string(), expected);
        assert_eq!(format!("{url:?}"), format!("DatabaseUrl({expected:?})"));
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(
                !shown.contains("pa%3Ass") && !shown.contains("pa:ss"),
                "{shown}"
            );
        }
        assert_eq!(
            url.redact("server said pa:ss-w0rd and pa%3Ass-w0rd"),
            "server said ******** and ********"
        );
    }

    #[test]
    fn several_hosts_are_shown_with_their_ports() {
        let url: DatabaseUrl = "postgresql://u:p@a:5433,b/db?target_session_attrs=read-write"
            .parse()
            .unwrap();
        assert_eq!(url.to_string(), "postgres://u@a:5433,b:5432/db");
    }

    #[test]
    fn errors_never_quote_the_password() {
        let bad = [
            ("mysql://u:s3cr3t-pw@h/db", "expected postgres://"),
            ("postgres://u:s3cr3t-pw@h/db?sslmode=sometimes", "sslmode"),
            (
                "postgres://u:s3cr3t-pw@h:notaport/db",
                "invalid PostgreSQL URL",
            ),
            ("postgres://u:s3cr3t-pw@h/db?nonsense=1", "nonsense"),
            ("postgres://:s3cr3t-pw@h/db", "no user"),
            ("postgres://u:s3cr3t-pw@/db", "no host"),
        ];
        for (raw, expected) in bad {
            let err = raw.parse::<DatabaseUrl>().unwrap_err();
            assert!(err.contains(expected), "{raw}: {err}");
            assert!(!err.contains("s3cr3t"), "{raw}: {err}");
        }
    }

    #[test]
    fn percent_escapes_are_decoded_and_stray_percent_signs_kept() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
