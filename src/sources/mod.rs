//! One module per webhook provider: typed events, authentication and the HTTP intake handler.

pub mod chatbrick;
pub mod livedesk;
