//! `hookline events …`, `hookline replay …` and `hookline blocked …`: calls to the running
//! server's admin API, printed for a person (tables, one line per replay or skip) or, with
//! `--json`, as the API answered.

use std::process::ExitCode;

use serde_json::Value;

use super::args::{BlockedCommand, EventsCommand, FilterArgs, ReplayCommand};
use crate::admin_client::AdminClient;
use crate::config::Config;

/// `hookline events list|show|dead`.
pub(super) async fn events(config: &Config, command: EventsCommand) -> ExitCode {
    match command {
        EventsCommand::List(filter) => {
            let answer = get(config, "/api/events", &filter).await;
            print(answer, filter.json, |v| events_table(&v["events"]))
        }
        EventsCommand::Show { id } => {
            let answer = call(config, false, &format!("/api/events/{id}"), &[]).await;
            print(answer, true, |_| String::new())
        }
        EventsCommand::Dead(filter) => {
            let answer = get(config, "/api/dead-letters", &filter).await;
            print(answer, filter.json, |v| {
                dead_letters_table(&v["dead_letters"])
            })
        }
    }
}

/// `hookline replay delivery|event|dead`.
pub(super) async fn replay(config: &Config, command: ReplayCommand) -> ExitCode {
    let (path, query, json) = match command {
        ReplayCommand::Delivery { id } => (format!("/api/deliveries/{id}/replay"), vec![], false),
        ReplayCommand::Event { id } => (format!("/api/events/{id}/replay"), vec![], false),
        ReplayCommand::Dead(filter) => (
            "/api/dead-letters/replay".to_owned(),
            filter.query(),
            filter.json,
        ),
    };
    let answer = call(config, true, &path, &query).await;
    print(answer, json, |v| {
        let n = v["replayed"].as_u64().unwrap_or(0);
        format!("replayed {n} deliver{}", if n == 1 { "y" } else { "ies" })
    })
}

/// `hookline blocked list|skip`.
pub(super) async fn blocked(config: &Config, command: BlockedCommand) -> ExitCode {
    match command {
        BlockedCommand::List { json } => {
            let answer = call(config, false, "/api/blocked", &[]).await;
            print(answer, json, |v| blocked_table(&v["blocked"]))
        }
        BlockedCommand::Skip { delivery } => {
            let path = format!("/api/blocked/{delivery}/skip");
            let answer = call(config, true, &path, &[]).await;
            print(answer, false, |_| {
                format!("skipped dead letter {delivery}: the next delivery of its key goes")
            })
        }
    }
}

/// GET `path` with the filter's query.
async fn get(config: &Config, path: &str, filter: &FilterArgs) -> Result<Value, String> {
    call(config, false, path, &filter.query()).await
}

/// One admin API call: its JSON, or why it failed.
async fn call(
    config: &Config,
    post: bool,
    path: &str,
    query: &[(&'static str, String)],
) -> Result<Value, String> {
    let client = AdminClient::new(config).map_err(|e| e.to_string())?;
    let answer = if post {
        client.post(path, query).await
    } else {
        client.get(path, query).await
    };
    answer.map_err(|e| e.to_string())
}

/// Prints an answer as JSON (`json`) or as `human` renders it; exit 1 on failure.
fn print(answer: Result<Value, String>, json: bool, human: impl Fn(&Value) -> String) -> ExitCode {
    match answer {
        Ok(value) if json => {
            let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(value) => {
            println!("{}", human(&value));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The events of a listing, one per line.
fn events_table(events: &Value) -> String {
    let rows: Vec<Vec<String>> = items(events)
        .map(|e| {
            vec![
                time(&e["received_at"]),
                text(&e["source"]),
                text(&e["event_type"]),
                text(&e["status"]),
                text(&e["id"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no events".into();
    }
    table(&["RECEIVED", "SOURCE", "TYPE", "STATUS", "ID"], rows)
}

/// The dead letters of a listing, one per line.
fn dead_letters_table(dead: &Value) -> String {
    let rows: Vec<Vec<String>> = items(dead)
        .map(|d| {
            vec![
                text(&d["id"]),
                time(&d["due_at"]),
                text(&d["route"]),
                text(&d["attempts"]),
                text(&d["event_id"]),
                shorten(&text(&d["last_error"]), 60),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no dead letters".into();
    }
    let headers = [
        "DELIVERY",
        "SINCE",
        "ROUTE",
        "ATTEMPTS",
        "EVENT",
        "LAST ERROR",
    ];
    table(&headers, rows)
}

/// The blocked keys of a listing, one per line.
fn blocked_table(blocked: &Value) -> String {
    let rows: Vec<Vec<String>> = items(blocked)
        .map(|b| {
            vec![
                text(&b["route"]),
                shorten(&text(&b["key"]), 40),
                text(&b["head"]),
                time(&b["since"]),
                text(&b["waiting"]),
                text(&b["event_id"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no blocked keys".into();
    }
    let headers = ["ROUTE", "KEY", "HEAD", "SINCE", "WAITING", "EVENT"];
    table(&headers, rows)
}

/// The elements of a JSON array (none if it is not one).
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// A JSON value as a cell: strings bare, null as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time to the second (`2026-05-04 10:15:02Z`).
fn time(value: &Value) -> String {
    let shown = text(value);
    match chrono::DateTime::parse_from_rfc3339(&shown) {
        Ok(t) => t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => shown,
    }
}

/// At most `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        let padded: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    cell
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect();
        padded.join("  ")
    };
    let header = line(headers.iter().map(|h| h.to_string()).collect());
    std::iter::once(header)
        .chain(rows.into_iter().map(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_read_as_aligned_columns() {
        let events = json!([
            {"received_at": "2026-05-04T10:15:02.123Z", "source": "chatbrick",
             "event_type": "store.created", "status": "delivered", "id": "evt_cb_msg_1"},
            {"received_at": "2026-05-04T10:16:00Z", "source": "livedesk",
             "event_type": "message_created", "status": "dead", "id": "evt_ld_2"},
        ]);
        let shown = events_table(&events);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines[0],
            "RECEIVED              SOURCE     TYPE             STATUS     ID"
        );
        assert_eq!(
            lines[1],
            "2026-05-04 10:15:02Z  chatbrick  store.created    delivered  evt_cb_msg_1"
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(events_table(&json!([])), "no events");
    }

    #[test]
    fn long_errors_are_shortened() {
        let dead = json!([{"id": 7, "due_at": "2026-05-04T10:15:02Z", "route": "crm",
            "attempts": 30, "event_id": "evt_cb_1", "last_error": "x".repeat(100)}]);
        let shown = dead_letters_table(&dead);
        let row = shown.lines().nth(1).unwrap();
        assert!(
            row.starts_with("7         2026-05-04 10:15:02Z  crm    30        evt_cb_1  xxx"),
            "{row}"
        );
        assert!(row.ends_with("x…"), "{row}");
    }
}
