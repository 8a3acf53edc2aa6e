//! An [`EventFilter`] as SQL: the `WHERE` clause and parameters of the inspector's listings and
//! of replaying dead letters.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::error::Failure;
use super::schema::open_delivery;
use crate::store::{EventFilter, StoreError};

/// The filter clause of dead letters (over `deliveries d`).
pub(super) const DEAD: &str = concat!("d.state = 'dead' AND d.", open_delivery!());

/// SQL fragment and parameters for an [`EventFilter`] over `events e` (and `deliveries d` when
/// `with_delivery` is set).
pub(super) struct FilterSql {
    clauses: Vec<String>,
    /// The values of the clauses' `?`s, in order.
    pub(super) params: Vec<Value>,
    /// Whether a clause reads `events e` (else a query of deliveries needs no join).
    reads_events: bool,
}

impl FilterSql {
    /// The filter's clauses; refuses a filter that does not apply to what is listed.
    pub(super) fn new(filter: &EventFilter, with_delivery: bool) -> Result<FilterSql, StoreError> {
        let mut sql = FilterSql {
            clauses: Vec::new(),
            params: Vec::new(),
            reads_events: false,
        };
        if let Some(source) = &filter.source {
            sql.push("e.source = ?", Value::Text(source.clone()));
        }
        if let Some(event_type) = &filter.event_type {
            sql.push("e.event_type = ?", Value::Text(event_type.clone()));
        }
        if let Some(since) = filter.since {
            sql.push(
                "e.received_at >= ?",
                Value::Integer(since.timestamp_millis()),
            );
        }
        if let Some(until) = filter.until {
            sql.push(
                "e.received_at < ?",
                Value::Integer(until.timestamp_millis()),
            );
        }
        if let Some(before) = filter.before {
            sql.push("e.seq < ?", Value::Integer(before));
        }
        if let Some(after) = filter.after {
            sql.push("e.seq > ?", Value::Integer(after));
        }
        if let Some(about) = &filter.about {
            sql.about(about);
        }
        if let Some(error) = &filter.error {
            if !with_delivery {
                return Err(StoreError::Conflict(
                    "filter by error applies to dead letters only".into(),
                ));
            }
            sql.and_deliveries("d.last_error = ?");
            sql.params.push(Value::Text(error.clone()));
        }
        if let Some(route) = &filter.route {
            if !with_delivery {
                return Err(StoreError::Conflict(
                    "filter by route applies to dead letters only".into(),
                ));
            }
            sql.and_deliveries("d.route = ?");
            sql.params.push(Value::Text(route.clone()));
        }
        if let Some(status) = &filter.status {
            if with_delivery {
                return Err(StoreError::Conflict(
                    "filter by status applies to events only".into(),
                ));
            }
            sql.and(status_clause(status)?);
        }
        Ok(sql)
    }

    /// Narrows further by a clause without parameters.
    pub(super) fn and(&mut self, clause: &str) {
        self.reads_events = true;
        self.clauses.push(clause.into());
    }

    /// Narrows further by a clause that reads only `deliveries d`.
    pub(super) fn and_deliveries(&mut self, clause: &str) {
        self.clauses.push(clause.into());
    }

    /// The `FROM` of a query of deliveries under this filter: joined with their events only
    /// when a clause reads them, since an event row (with its body) costs a page read.
    pub(super) fn deliveries_from(&self) -> &'static str {
        if self.reads_events {
            "deliveries d JOIN events e ON e.seq = d.event_seq"
        } else {
            "deliveries d"
        }
    }

    /// Events whose contact or conversation is `id`: two lookups in the partial indexes of
    /// those columns, not a scan.
    fn about(&mut self, id: &str) {
        self.and(
            "e.seq IN (SELECT seq FROM events WHERE contact_id = ? \
             UNION ALL SELECT seq FROM events WHERE conversation_id = ?)",
        );
        self.params.push(Value::Text(id.to_owned()));
        self.params.push(Value::Text(id.to_owned()));
    }

    fn push(&mut self, clause: &str, value: Value) {
        self.and(clause);
        self.params.push(value);
    }

    /// The `WHERE` clause, or nothing when every row matches.
    pub(super) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The clause of an event status. Dead and pending events are found from the partial index of
/// open deliveries (few, however large the inbox) rather than by testing every event.
pub(super) fn status_clause(status: &str) -> Result<&'static str, StoreError> {
    Ok(match status {
        "dead" => concat!(
            "e.seq IN (SELECT x.event_seq FROM deliveries x WHERE x.state = 'dead' AND x.",
            open_delivery!(),
            ")"
        ),
        "pending" => concat!(
            "e.seq IN (SELECT x.event_seq FROM deliveries x WHERE x.state IN ('pending', 'inflight') AND x.",
            open_delivery!(),
            ")"
        ),
        "delivered" => "EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq) AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq AND x.state <> 'delivered')",
        "unrouted" => "NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_seq = e.seq)",
        "undecodable" => "e.decode_error IS NOT NULL",
        other => {
            return Err(StoreError::Conflict(format!(
                "unknown status {other:?} (expected pending, delivered, dead, unrouted or undecodable)"
            )))
        }
    })
}

/// Runs `select` narrowed by `sql`, newest (highest `order_by`) first, up to the filter's limit.
pub(super) fn select_filtered<T>(
    conn: &Connection,
    select: &str,
    sql: &FilterSql,
    order_by: &str,
    filter: &EventFilter,
    from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, Failure> {
    let query = format!(
        "{select} {} ORDER BY {order_by} DESC LIMIT {}",
        sql.where_sql(),
        limit_of(filter)
    );
    let rows = conn
        .prepare(&query)?
        .query_map(rusqlite::params_from_iter(sql.params.iter()), from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn limit_of(filter: &EventFilter) -> i64 {
    i64::from(filter.limit.unwrap_or(100).clamp(1, 1000))
}
