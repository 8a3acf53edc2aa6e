//! The `log` handler on a real ChatBrick event: which ids and names its line carries, and that it
//! writes nothing when its level is off.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::Utc;
use hookline::handlers::log::LogHandler;
use hookline::{chatbrick, Envelope, Handler};
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

async fn logged(level: Level, handler: LogHandler) -> String {
    let body = include_bytes!("../fixtures/chatbrick/contact.connection.connected.store_only.json");
    let envelope = Envelope::decode(
        chatbrick::SOURCE,
        "default",
        "msg_1".into(),
        Utc::now(),
        Bytes::from_static(body),
    );
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(out.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    handler.handle(&envelope).await.unwrap();
    let text = out.0.lock().unwrap().clone();
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn writes_ids_but_no_names_unless_asked() {
    let line = logged(Level::INFO, LogHandler::default()).await;
    assert!(
        line.contains("event_type=contact.connection.connected"),
        "{line}"
    );
    assert!(
        line.contains("contact=\"clrq5ca80000lb9c9dnxxfyid\""),
        "{line}"
    );
    assert!(!line.contains("康宜恩"), "{line}");
    let personal = LogHandler {
        include_personal: true,
    };
    let line = logged(Level::INFO, personal).await;
    assert!(line.contains("name=\"康宜恩\""), "{line}");
}

#[tokio::test]
async fn writes_nothing_when_its_level_is_off() {
    assert_eq!(logged(Level::WARN, LogHandler::default()).await, "");
}
