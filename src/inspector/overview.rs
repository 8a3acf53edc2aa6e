//! The home page: activity over the last hour and day by source, the figures an engineer on
//! call looks at first (undecodable events, waiting and dead work, refused requests), each
//! linking to the list behind it.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use chrono::{TimeDelta, Utc};

use super::chart::{self, Chart, Span};
use super::session::Session;
use super::view::{age, form_time, query, render, with_query, Chrome, PageError};
use super::Inspector;
use crate::signature::VerifyError;

/// The hour's chart: a bar per minute.
const HOUR: Span = Span {
    title: "Last hour, events per minute",
    bucket: TimeDelta::minutes(1),
    buckets: 60,
};

/// The day's chart: a bar per half hour, in events per minute.
const DAY: Span = Span {
    title: "Last 24 hours, events per minute (half-hour average)",
    bucket: TimeDelta::minutes(30),
    buckets: 48,
};

/// One figure and the list behind it.
struct Figure {
    label: &'static str,
    value: String,
    href: String,
    /// Whether it calls for attention (dead letters, undecodable events).
    alert: bool,
}

/// One source's events.
struct SourceLine {
    name: String,
    class: String,
    hour: u64,
    day: u64,
    undecodable: u64,
    href: String,
}

/// Refused webhook requests of one source, endpoint and reason.
struct Refusal {
    source: String,
    endpoint: String,
    reason: String,
    authentication: bool,
    count: u64,
}

/// The overview page.
#[derive(Template)]
#[template(path = "inspector/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    charts: Vec<Chart>,
    figures: Vec<Figure>,
    sources: Vec<SourceLine>,
    refusals: Vec<Refusal>,
    /// Whether the refused requests can be read (the metrics recorder is hookline's).
    metrics: bool,
    now: String,
}

/// The overview.
pub(super) async fn page(
    State(inspector): State<Inspector>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let now = Utc::now();
    let day_start = DAY.start(now);
    let minutes = inspector.store.activity(day_start).await?;
    let backlog = inspector.store.backlog().await?;
    let names = inspector.sources.names();
    let events = inspector.at("/events");
    let hour_start = now - TimeDelta::hours(1);
    let in_hour = |m: &&crate::store::MinuteCount| m.minute + TimeDelta::minutes(1) > hour_start;
    let sum = |f: fn(&crate::store::MinuteCount) -> u64, hour: bool| -> u64 {
        minutes.iter().filter(|m| !hour || in_hour(m)).map(f).sum()
    };
    let since = |start| with_query(&events, &query(&[("since", &form_time(start))]));
    let waiting = backlog.deliveries.pending + backlog.deliveries.inflight;
    let oldest = backlog.oldest_waiting_since.map(|t| age(t, now));
    let figures = vec![
        Figure {
            label: "Events, last hour",
            value: sum(|m| m.events, true).to_string(),
            href: since(hour_start),
            alert: false,
        },
        Figure {
            label: "Events, last 24 hours",
            value: sum(|m| m.events, false).to_string(),
            href: since(day_start),
            alert: false,
        },
        Figure {
            label: "Undecodable, last 24 hours",
            value: sum(|m| m.undecodable, false).to_string(),
            href: with_query(
                &events,
                &query(&[("status", "undecodable"), ("since", &form_time(day_start))]),
            ),
            alert: sum(|m| m.undecodable, false) > 0,
        },
        Figure {
            label: "Events waiting for delivery",
            value: backlog.events_pending.to_string(),
            href: with_query(&events, "status=pending"),
            alert: false,
        },
        Figure {
            label: "Deliveries waiting (oldest)",
            value: match oldest {
                Some(oldest) => format!("{waiting} ({oldest})"),
                None => waiting.to_string(),
            },
            href: with_query(&events, "status=pending"),
            alert: false,
        },
        Figure {
            label: "Dead letters",
            value: format!(
                "{} ({} events)",
                backlog.deliveries.dead, backlog.events_dead
            ),
            href: inspector.at("/dead-letters"),
            alert: backlog.deliveries.dead > 0,
        },
    ];
    let sources = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let of = |m: &&crate::store::MinuteCount| m.source == *name;
            SourceLine {
                name: (*name).to_owned(),
                class: format!("s{}", i % 6),
                hour: minutes
                    .iter()
                    .filter(of)
                    .filter(in_hour)
                    .map(|m| m.events)
                    .sum(),
                day: minutes.iter().filter(of).map(|m| m.events).sum(),
                undecodable: minutes.iter().filter(of).map(|m| m.undecodable).sum(),
                href: with_query(&events, &query(&[("source", name)])),
            }
        })
        .collect();
    let charts = [&HOUR, &DAY]
        .into_iter()
        .map(|span| chart::draw(span, &minutes, &names, now, &events))
        .collect();
    render(OverviewPage {
        chrome: inspector.chrome(&session, "overview"),
        charts,
        figures,
        sources,
        refusals: inspector.refusals(),
        metrics: inspector.metrics.is_some(),
        now: form_time(now).replace('T', " "),
    })
}

impl Inspector {
    /// The webhook requests refused since this process started, by source, endpoint and
    /// reason, the most first (from `hookline_requests_total`).
    fn refusals(&self) -> Vec<Refusal> {
        let Some(handle) = &self.metrics else {
            return Vec::new();
        };
        let mut refusals: Vec<Refusal> = crate::metrics::request_counts(handle)
            .into_iter()
            .filter(|r| r.outcome != "accepted" && r.outcome != "duplicate" && r.count > 0)
            .map(|r| Refusal {
                authentication: VerifyError::REASONS.contains(&r.outcome.as_str()),
                source: r.source,
                endpoint: r.endpoint,
                reason: r.outcome,
                count: r.count,
            })
            .collect();
        refusals.sort_by_key(|r| std::cmp::Reverse(r.count));
        refusals
    }
}
