//! The `log` handler: one structured tracing line per event.

use async_trait::async_trait;

use super::{Handler, HandlerError};
use crate::envelope::{Envelope, PersonalData};

/// Writes one `info` line per event with source, type, ids and the key ids it is about. Names and
/// message text are left out unless the operator opts in, because logs travel further than the
/// store does.
#[derive(Debug, Clone, Default)]
pub struct LogHandler {
    /// Also log the person's name and the message text.
    pub include_personal: bool,
}

#[async_trait]
impl Handler for LogHandler {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        // An event read back from the store decodes on first use: not for a line nobody sees.
        if !tracing::enabled!(target: "hookline::event", tracing::Level::INFO) {
            return Ok(());
        }
        let ids = event.event().key_ids();
        let personal = if self.include_personal {
            event.event().personal()
        } else {
            PersonalData::default()
        };
        tracing::info!(
            target: "hookline::event",
            source = event.source.as_str(),
            endpoint = %event.endpoint,
            event_type = %event.event_type,
            event_id = %event.id,
            provider_id = %event.provider_id,
            contact = ids.contact.as_deref(),
            store = ids.store.as_deref(),
            account = ids.account.as_deref(),
            conversation = ids.conversation.as_deref(),
            message = ids.message.as_deref(),
            name = personal.name.as_deref(),
            content = personal.content.as_deref(),
            undecodable = event.decode_error.as_deref(),
            "event"
        );
        Ok(())
    }

    /// A line is written in microseconds, or not at all when its level is off.
    fn runs_at_intake(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use chrono::Utc;
    use tracing::Level;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::envelope::Source;

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
        let body =
            include_bytes!("../../fixtures/chatbrick/contact.connection.connected.store_only.json");
        let envelope = Envelope::new(
            Source::Chatbrick,
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
}
