//! The `file` handler: one JSON line per event, appended and synced to disk before the delivery
//! counts as done.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::value::RawValue;

use super::{Handler, HandlerError};
use crate::envelope::Envelope;

/// Appends events to a JSON Lines file. Writes are serialised and `fsync`ed one at a time.
#[derive(Debug, Clone)]
pub struct FileHandler {
    /// Where lines go (for error messages).
    path: PathBuf,
    /// The open file, shared by concurrent deliveries.
    file: Arc<Mutex<File>>,
}

impl FileHandler {
    /// Opens (creating) the file for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileHandler {
            path: path.to_owned(),
            file: Arc::new(Mutex::new(file)),
        })
    }
}

impl FileHandler {
    /// Why [`FileHandler::open`] would fail (its directory or the file not writable by us), found
    /// out without creating either: what `check-config` runs in its place.
    pub fn check(path: &Path) -> Result<(), crate::writable::Unwritable> {
        crate::writable::file_problem(path).map_or(Ok(()), Err)
    }
}

/// The line written for one event.
fn line(event: &Envelope) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        id: &'a str,
        source: &'a str,
        endpoint: &'a str,
        event_type: &'a str,
        provider_id: &'a str,
        received_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        decode_error: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_text: Option<String>,
    }
    let raw: Option<&RawValue> = serde_json::from_slice(&event.body).ok();
    let mut bytes = serde_json::to_vec(&Line {
        id: &event.id,
        source: event.source.as_str(),
        endpoint: &event.endpoint,
        event_type: &event.event_type,
        provider_id: &event.provider_id,
        received_at: event.received_at.to_rfc3339(),
        decode_error: event.decode_error.as_deref(),
        body: raw,
        body_text: raw
            .is_none()
            .then(|| String::from_utf8_lossy(&event.body).into_owned()),
    })
    .unwrap_or_default();
    // A RawValue keeps the provider's own newlines; a JSON line must not contain any.
    bytes.retain(|b| *b != b'\n' && *b != b'\r');
    bytes.push(b'\n');
    bytes
}

#[async_trait]
impl Handler for FileHandler {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let bytes = line(event);
        let file = self.file.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file
                .lock()
                .map_err(|_| HandlerError::permanent("file handler lock poisoned"))?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_data())
                .map_err(|e| HandlerError::retryable(format!("{}: {e}", path.display())))
        })
        .await
        .map_err(|e| HandlerError::retryable(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_one_json_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        let handler = FileHandler::open(&path).unwrap();
        for id in ["a", "b"] {
            let event = crate::envelope::testing::envelope(
                "livedesk",
                "default",
                id,
                chrono::Utc::now(),
                b"{\n\"event\": \"x_new\"\n}",
            );
            handler.handle(&event).await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["provider_id"], "a");
        assert_eq!(lines[1]["body"]["event"], "x_new");
    }
}
