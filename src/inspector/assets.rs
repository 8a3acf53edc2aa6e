//! The inspector's stylesheet and script, compiled into the binary: nothing is fetched from
//! another site, and no build step makes them. Each is served under a name that carries a hash
//! of its content, so browsers may cache it for a year and still get a new one with a new
//! hookline.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Inspector;

/// One embedded file.
struct Asset {
    /// Its name in `assets/`, e.g. `inspector.css`.
    name: &'static str,
    /// Its content.
    body: &'static str,
    /// Its media type.
    content_type: &'static str,
}

/// Every embedded file.
static ASSETS: [Asset; 2] = [
    Asset {
        name: "inspector.css",
        body: include_str!("../../assets/inspector.css"),
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        name: "inspector.js",
        body: include_str!("../../assets/inspector.js"),
        content_type: "text/javascript; charset=utf-8",
    },
];

/// The versioned file names (`inspector.3f2a…css`), in the order of [`ASSETS`].
fn versioned() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let hash = hex::encode(&Sha256::digest(asset.body.as_bytes())[..6]);
                let (stem, ext) = asset.name.rsplit_once('.').unwrap_or((asset.name, ""));
                format!("{stem}.{hash}.{ext}")
            })
            .collect()
    })
}

/// The URL of the embedded file `name` (`inspector.css`, `inspector.js`) under `base`.
pub(super) fn url(base: &str, name: &str) -> String {
    let index = ASSETS.iter().position(|a| a.name == name).unwrap_or(0);
    format!("{base}/assets/{}", versioned()[index])
}

/// Serves an embedded file by its versioned name, cacheable for a year.
pub(super) async fn serve(State(_): State<Inspector>, Path(file): Path<String>) -> Response {
    match versioned().iter().position(|name| *name == file) {
        Some(index) => (
            [
                (header::CONTENT_TYPE, ASSETS[index].content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            ASSETS[index].body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_a_hash_of_the_content() {
        let css = url("/ops", "inspector.css");
        assert!(
            css.starts_with("/ops/assets/inspector.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/ops/assets/inspector..css".len() + 12);
        assert_ne!(url("", "inspector.js"), url("", "inspector.css"));
    }
}
