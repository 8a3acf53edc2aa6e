//! The overview's activity charts, drawn on the server as SVG: one bar per time bucket, stacked
//! by source, each bar a link to the events of its bucket.

use chrono::{DateTime, TimeDelta, Utc};

use super::view::{form_time, query};
use crate::store::MinuteCount;

/// Drawing area, in SVG units.
const WIDTH: f64 = 720.0;
/// Height of the tallest bar.
const HEIGHT: f64 = 120.0;

/// A chart, ready for the template.
pub(super) struct Chart {
    /// What it shows, e.g. `Last hour, events per minute`.
    pub(super) title: String,
    /// The bars, oldest first.
    pub(super) bars: Vec<Bar>,
    /// The highest rate shown, for the axis label.
    pub(super) peak: String,
    /// Labels of the first and last bucket's start.
    pub(super) from: String,
    /// The end of the last bucket.
    pub(super) to: String,
}

/// One time bucket.
pub(super) struct Bar {
    /// Left edge.
    pub(super) x: String,
    /// Width.
    pub(super) width: String,
    /// What it holds, for its tooltip and screen readers.
    pub(super) label: String,
    /// The events of this bucket.
    pub(super) href: String,
    /// One rectangle per source with events, bottom up.
    pub(super) segments: Vec<Segment>,
}

/// One source's part of a bar.
pub(super) struct Segment {
    /// Top edge.
    pub(super) y: String,
    /// Height.
    pub(super) height: String,
    /// The stylesheet class of its source's colour (`s0`, `s1`, …).
    pub(super) class: String,
}

/// What a chart covers: `buckets` buckets of `bucket` each, ending with the one that holds `now`.
pub(super) struct Span {
    /// The chart's title.
    pub(super) title: &'static str,
    /// Length of a bucket.
    pub(super) bucket: TimeDelta,
    /// How many.
    pub(super) buckets: usize,
}

impl Span {
    /// The start of the first bucket.
    pub(super) fn start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let width = self.bucket.num_milliseconds();
        let ms = now.timestamp_millis();
        let last = ms - ms.rem_euclid(width);
        DateTime::from_timestamp_millis(last - width * (self.buckets as i64 - 1)).unwrap_or(now)
    }
}

/// The chart of `minutes` over `span`, in events per minute, stacked by `sources` (in that
/// order), each bar linking to `events_path` filtered to its bucket.
pub(super) fn draw(
    span: &Span,
    minutes: &[MinuteCount],
    sources: &[&str],
    now: DateTime<Utc>,
    events_path: &str,
) -> Chart {
    let start = span.start(now);
    let mut counts = vec![vec![0u64; sources.len()]; span.buckets];
    for m in minutes {
        let index = (m.minute - start)
            .num_milliseconds()
            .div_euclid(span.bucket.num_milliseconds());
        let source = sources.iter().position(|s| *s == m.source);
        if let (Ok(index), Some(source)) = (usize::try_from(index), source) {
            if index < span.buckets {
                counts[index][source] += m.events;
            }
        }
    }
    let per_minute = span.bucket.num_minutes().max(1) as f64;
    let peak = counts
        .iter()
        .map(|c| c.iter().sum::<u64>() as f64 / per_minute)
        .fold(0.0, f64::max);
    let scale = if peak > 0.0 { HEIGHT / peak } else { 0.0 };
    let slot = WIDTH / span.buckets as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, by_source)| {
            let from = start + span.bucket * i as i32;
            let mut top = HEIGHT;
            let segments = by_source
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| {
                    let height = *n as f64 / per_minute * scale;
                    top -= height;
                    Segment {
                        y: format!("{top:.1}"),
                        height: format!("{height:.1}"),
                        class: format!("s{}", s % 6),
                    }
                })
                .collect();
            let detail: Vec<String> = sources
                .iter()
                .zip(by_source)
                .map(|(s, n)| format!("{s} {n}"))
                .collect();
            Bar {
                x: format!("{:.1}", i as f64 * slot),
                width: format!("{:.1}", (slot - 1.0).max(1.0)),
                label: format!(
                    "{} UTC: {}",
                    form_time(from).replace('T', " "),
                    detail.join(", ")
                ),
                href: format!(
                    "{events_path}?{}",
                    query(&[
                        ("since", &form_time(from)),
                        ("until", &form_time(from + span.bucket))
                    ])
                ),
                segments,
            }
        })
        .collect();
    Chart {
        title: span.title.to_owned(),
        bars,
        peak: format!("{peak:.1}"),
        from: form_time(start).replace('T', " "),
        to: form_time(start + span.bucket * span.buckets as i32).replace('T', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(at: DateTime<Utc>, source: &str, events: u64) -> MinuteCount {
        MinuteCount {
            minute: at,
            source: source.into(),
            event_type: "t".into(),
            events,
            undecodable: 0,
        }
    }

    #[test]
    fn events_fall_in_their_bucket_stacked_by_source_and_scaled_to_the_peak() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T12:00:30Z")
            .unwrap()
            .to_utc();
        let span = Span {
            title: "t",
            bucket: TimeDelta::minutes(30),
            buckets: 4,
        };
        assert_eq!(form_time(span.start(now)), "2026-01-01T10:30");
        let minutes = [
            minute(now - TimeDelta::minutes(5), "a", 30),
            minute(now - TimeDelta::minutes(6), "b", 30),
            minute(now - TimeDelta::minutes(35), "a", 15),
            minute(now - TimeDelta::hours(5), "a", 999),
        ];
        let chart = draw(&span, &minutes, &["a", "b"], now, "/events");
        assert_eq!(chart.bars.len(), 4);
        assert_eq!(chart.peak, "2.0");
        assert!(chart.bars[0].segments.is_empty());
        assert_eq!(chart.bars[1].segments.len(), 1);
        assert_eq!(chart.bars[1].segments[0].height, "30.0");
        let last = &chart.bars[2];
        assert_eq!(
            (last.segments.len(), last.segments[1].y.as_str()),
            (2, "0.0")
        );
        assert_eq!(
            last.href,
            "/events?since=2026-01-01T11%3A30&until=2026-01-01T12%3A00"
        );
        assert!(last.label.contains("a 30, b 30"), "{}", last.label);
    }
}
