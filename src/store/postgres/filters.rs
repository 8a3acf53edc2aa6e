//! An [`EventFilter`] as SQL: the `WHERE` clause and parameters of the inspector's listings and
//! of replaying dead letters.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::Failure;
use super::pool::Connection;
use super::writer::whole_millis;
use crate::store::{EventFilter, StoreError};

/// A parameter of a filter.
type Param = Box<dyn ToSql + Sync + Send>;

/// The `WHERE` clause of an [`EventFilter`] over `events e` (and `deliveries d` when it lists
/// deliveries), its parameters numbered `$1`, `$2`, … in order.
pub(super) struct FilterSql {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl FilterSql {
    /// The filter's clauses; refuses a filter that does not apply to what is listed.
    pub(super) fn new(filter: &EventFilter, of_deliveries: bool) -> Result<FilterSql, StoreError> {
        let mut sql = FilterSql {
            clauses: Vec::new(),
            params: Vec::new(),
        };
        if let Some(source) = &filter.source {
            sql.push("e.source =", Box::new(source.clone()));
        }
        if let Some(event_type) = &filter.event_type {
            sql.push("e.event_type =", Box::new(event_type.clone()));
        }
        if let Some(since) = filter.since {
            sql.push("e.received_at >=", Box::new(whole_millis(since)));
        }
        if let Some(until) = filter.until {
            sql.push("e.received_at <", Box::new(whole_millis(until)));
        }
        if let Some(before) = filter.before {
            sql.push("e.seq <", Box::new(before));
        }
        if let Some(after) = filter.after {
            sql.push("e.seq >", Box::new(after));
        }
        if let Some(about) = &filter.about {
            sql.about(about);
        }
        if let Some(error) = &filter.error {
            if !of_deliveries {
                return Err(StoreError::Conflict(
                    "filter by error applies to dead letters only".into(),
                ));
            }
            sql.push("d.last_error =", Box::new(error.clone()));
        }
        match (&filter.route, &filter.status, of_deliveries) {
            (Some(_), _, false) => Err(StoreError::Conflict(
                "filter by route applies to dead letters only".into(),
            )),
            (_, Some(_), true) => Err(StoreError::Conflict(
                "filter by status applies to events only".into(),
            )),
            (Some(route), _, true) => {
                sql.push("d.route =", Box::new(route.clone()));
                Ok(sql)
            }
            (_, Some(status), false) => {
                sql.and(status_clause(status)?);
                Ok(sql)
            }
            (None, None, _) => Ok(sql),
        }
    }

    /// Narrows further by a clause without parameters.
    pub(super) fn and(&mut self, clause: &str) {
        self.clauses.push(clause.into());
    }

    /// Events whose contact or conversation is `id`: two lookups in the partial indexes of
    /// those columns, not a scan.
    fn about(&mut self, id: &str) {
        self.params.push(Box::new(id.to_owned()));
        let n = self.params.len();
        self.clauses.push(format!(
            "e.seq IN (SELECT seq FROM events WHERE contact_id = ${n} \
             UNION ALL SELECT seq FROM events WHERE conversation_id = ${n})"
        ));
    }

    /// Narrows by `left` compared with the next parameter (`"e.source ="`).
    fn push(&mut self, left: &str, value: Param) {
        self.params.push(value);
        self.clauses.push(format!("{left} ${}", self.params.len()));
    }

    /// The `WHERE` clause, or nothing when every row matches.
    pub(super) fn where_sql(&self) -> String {
        match self.clauses.is_empty() {
            true => String::new(),
            false => format!("WHERE {}", self.clauses.join(" AND ")),
        }
    }

    /// The parameters, as the driver takes them.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// Runs `select`, which holds this filter's [`FilterSql::where_sql`], newest (highest
    /// `order_by`) first, up to the filter's limit.
    pub(super) async fn select(
        &self,
        conn: &Connection,
        select: &str,
        order_by: &str,
        filter: &EventFilter,
    ) -> Result<Vec<Row>, Failure> {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let query = format!("{select} ORDER BY {order_by} DESC LIMIT {limit}");
        Ok(conn.query(&query, &self.params()).await?)
    }
}

/// The clause of an event status, driven by the deliveries' partial indexes where it can be.
fn status_clause(status: &str) -> Result<&'static str, StoreError> {
    Ok(match status {
        "dead" => "e.seq IN (SELECT event_seq FROM deliveries WHERE state = 'dead')",
        "pending" => {
            "e.seq IN (SELECT event_seq FROM deliveries WHERE state IN ('pending', 'inflight'))"
        }
        "delivered" => {
            "EXISTS (SELECT FROM deliveries x WHERE x.event_seq = e.seq)
             AND NOT EXISTS (SELECT FROM deliveries x
                             WHERE x.event_seq = e.seq AND x.state <> 'delivered')"
        }
        "unrouted" => "NOT EXISTS (SELECT FROM deliveries x WHERE x.event_seq = e.seq)",
        "undecodable" => "e.decode_error IS NOT NULL",
        other => {
            return Err(StoreError::Conflict(format!(
            "unknown status {other:?} (expected pending, delivered, dead, unrouted or undecodable)"
        )))
        }
    })
}
