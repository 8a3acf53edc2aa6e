//! Times as the tables keep them: milliseconds since the Unix epoch, in `INTEGER` columns.

use chrono::{DateTime, TimeZone, Utc};

/// The current time as stored.
pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored time read back; one out of chrono's range (never written by hookline) reads as the
/// epoch rather than failing the whole read.
pub(super) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
