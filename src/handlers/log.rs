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
        let ids = event.key_ids();
        let personal = if self.include_personal {
            event.personal()
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
            // Not `message`: that key is the line's own text in JSON logs.
            message_id = ids.message.as_deref(),
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
