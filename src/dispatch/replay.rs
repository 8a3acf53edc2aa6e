//! Replays: making dead or finished deliveries due again, with a fresh retry budget, and waking
//! the workers so that they run at once; and skipping the dead letter that blocks a key of an
//! ordered route. The admin API and the inspector both replay through
//! here, so a replay from the browser does exactly what one from the CLI does.

use std::sync::Arc;

use bytes::Bytes;

use super::{Dispatcher, Router};
use crate::envelope::{Envelope, Sources};
use crate::store::{EventFilter, Store, StoreError};

/// What a replay needs: the inbox, the routes (an event replayed gets the deliveries of routes
/// added since it was stored), the sources (to decode a stored event for routing) and the
/// dispatcher to wake.
#[derive(Clone)]
pub struct Replayer {
    /// The inbox.
    store: Arc<dyn Store>,
    /// The configured routes.
    router: Arc<Router>,
    /// The sources this build serves.
    sources: Sources,
    /// Woken after a replay so that the deliveries run at once.
    dispatcher: Arc<Dispatcher>,
}

impl Replayer {
    /// A replayer over these parts.
    pub fn new(
        store: Arc<dyn Store>,
        router: Router,
        sources: Sources,
        dispatcher: Arc<Dispatcher>,
    ) -> Replayer {
        Replayer {
            store,
            router: Arc::new(router),
            sources,
            dispatcher,
        }
    }

    /// Replays every delivery of an event and creates those of routes it lacks; returns how
    /// many deliveries were made due.
    pub async fn event(&self, id: &str) -> Result<u64, StoreError> {
        let detail = self
            .store
            .event(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("event {id}")))?;
        let summary = &detail.summary;
        let source = self.sources.get(&summary.source).ok_or_else(|| {
            StoreError::Conflict(format!(
                "event {id} is of source {:?}, which this build does not serve",
                summary.source
            ))
        })?;
        let envelope = Envelope::decode(
            source,
            &summary.endpoint,
            summary.provider_id.clone(),
            summary.received_at,
            Bytes::from(detail.body.clone().unwrap_or_default()),
        );
        let routes = self.router.deliveries(&envelope);
        let replayed = self.store.replay_event(id, routes).await?;
        self.dispatcher.wake_all();
        tracing::info!(event_id = %id, deliveries = replayed, "event replayed");
        Ok(replayed)
    }

    /// Replays one delivery.
    pub async fn delivery(&self, id: i64) -> Result<(), StoreError> {
        self.store.replay_delivery(id).await?;
        self.dispatcher.wake_all();
        tracing::info!(delivery = id, "delivery replayed");
        Ok(())
    }

    /// Lets the key that dead letter `id` holds back go (it stays a dead letter), and wakes
    /// the workers so that the next delivery of that key runs at once.
    pub async fn skip(&self, id: i64) -> Result<(), StoreError> {
        self.store.skip_blocked(id).await?;
        self.dispatcher.wake_all();
        tracing::info!(delivery = id, "blocked key skipped past its dead letter");
        Ok(())
    }

    /// Replays every dead letter that matches `filter`; returns how many.
    pub async fn dead(&self, filter: EventFilter) -> Result<u64, StoreError> {
        let replayed = self.store.replay_dead(filter).await?;
        self.dispatcher.wake_all();
        tracing::info!(deliveries = replayed, "dead letters replayed");
        Ok(replayed)
    }
}
