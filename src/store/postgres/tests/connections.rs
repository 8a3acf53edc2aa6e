//! Connecting: TLS as `sslmode` asks, and errors that never show the password.

use super::scratch::{Cluster, PASSWORD, TLS_ONLY_USER};
use super::{DatabaseUrl, PostgresStore};
use crate::store::conformance::{event, stored, to};
use crate::store::Store;

/// The URL of a database that only [`TLS_ONLY_USER`] may use, with `query` appended.
fn tls_only_url(query: &str) -> DatabaseUrl {
    let cluster = Cluster::shared();
    let database = cluster.database_of(TLS_ONLY_USER);
    let port = cluster.port();
    format!("postgres://{TLS_ONLY_USER}:{PASSWORD}@127.0.0.1:{port}/{database}?{query}")
        .parse()
        .expect("a valid URL")
}

/// Opens the store and commits an event through it.
async fn commits(url: &DatabaseUrl) -> Result<(), String> {
    let store = PostgresStore::open(url, 2)
        .await
        .map_err(|e| e.to_string())?;
    let e = event("m1", chrono::TimeDelta::zero());
    stored(store.insert(&e, to("h")).await.map_err(|e| e.to_string())?);
    Ok(())
}

/// The role only TLS lets in: `require` gets through, `disable` is turned away (by
/// `hostnossl … reject`), with an error that does not show the password.
#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    commits(&tls_only_url("sslmode=require")).await.unwrap();
    let err = commits(&tls_only_url("sslmode=disable")).await.unwrap_err();
    assert!(err.contains("pg_hba.conf"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[tokio::test]
async fn sslmode_verify_full_checks_the_certificate_against_its_root() {
    let root = Cluster::shared().ca_certificate();
    let trusted = format!("sslmode=verify-full&sslrootcert={}", root.display());
    commits(&tls_only_url(&trusted)).await.unwrap();
    let chain_only = format!("sslmode=verify-ca&sslrootcert={}", root.display());
    commits(&tls_only_url(&chain_only)).await.unwrap();

    // Mozilla's roots do not include the scratch cluster's CA.
    let err = commits(&tls_only_url("sslmode=verify-full"))
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[tokio::test]
async fn an_unreadable_root_certificate_is_named_in_the_error() {
    let err = commits(&tls_only_url(
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await
    .unwrap_err();
    assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn a_wrong_password_fails_without_showing_it() {
    let cluster = Cluster::shared();
    let database = cluster.database();
    let wrong = "Wr0ng-secret-9f8e7d";
    let url: DatabaseUrl = format!(
        "postgres://hookline:{wrong}@127.0.0.1:{}/{database}",
        cluster.port()
    )
    .parse()
    .unwrap();
    let err = PostgresStore::open(&url, 2).await.unwrap_err().to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains(wrong), "{err}");
}
