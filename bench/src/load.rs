//! The load generator: pre-signed requests (see `requests`) sent over keep-alive HTTP/1.1
//! connections, one task per connection, every latency recorded in an HDR histogram.
//!
//! Requests are handed out from one shared counter, so a slow connection simply takes fewer of
//! them; the run is closed-loop (each connection sends its next request when the previous answer
//! is in), which is how a sender with a fixed number of connections behaves.
//!
//! Requests are serialized to bytes before the clock starts and written with one `writev` each;
//! answers are parsed with `httparse` (the parser hyper itself uses). A full hyper client costs
//! the generator more CPU per request than the baseline server spends answering it, which made
//! the generator, not the server, the limit of the baseline run (about 100k instead of 120k
//! requests/s on the 2-core machine, checked with `wrk`); this lean client leaves the server as
//! the limit.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::requests::Prepared;

/// Time one request may take, answer included, before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to open one TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnections one connection task may make after transport errors before it gives up.
const MAX_RECONNECTS: u32 = 3;
/// Largest latency the histogram records, in microseconds (larger values are clamped).
const MAX_LATENCY_US: u64 = 60_000_000;
/// Largest answer head (status line and headers) accepted, in bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Headers an answer may have.
const MAX_HEADERS: usize = 32;

/// What one phase (warm-up or measured) of a load run saw.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    /// Latency of every request answered 2xx, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Latency of every request answered otherwise, in microseconds.
    pub rejected_latency_us: Histogram<u64>,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered with another status.
    pub non_2xx: u64,
    /// Of those, answers `503` with a `Retry-After` header: hookline's "overloaded, come back".
    pub retry_later: u64,
    /// Requests that failed at the transport level or timed out.
    pub errors: u64,
    /// Requests never sent because every connection gave up.
    pub unsent: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// The first failure seen, to explain a failed run.
    pub first_failure: Option<String>,
    /// The first failure other than a `503` with `Retry-After`, to explain a failed overload run.
    pub first_unexpected: Option<String>,
}

impl PhaseStats {
    /// Empty statistics.
    pub fn new() -> PhaseStats {
        PhaseStats {
            latency_us: new_histogram(),
            rejected_latency_us: new_histogram(),
            ok: 0,
            non_2xx: 0,
            retry_later: 0,
            errors: 0,
            unsent: 0,
            elapsed: Duration::ZERO,
            first_failure: None,
            first_unexpected: None,
        }
    }

    /// Requests that did not get a 2xx, for whatever reason.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.errors + self.unsent
    }

    /// Requests that got neither a 2xx nor a `503` with `Retry-After`.
    pub fn unexpected(&self) -> u64 {
        self.failed() - self.retry_later
    }

    /// Answered requests per second of wall time.
    pub fn requests_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.ok + self.non_2xx) as f64 / secs
        } else {
            0.0
        }
    }

    /// Adds another connection's numbers to these.
    pub fn merge(&mut self, other: PhaseStats) {
        for (mine, theirs) in [
            (&mut self.latency_us, &other.latency_us),
            (&mut self.rejected_latency_us, &other.rejected_latency_us),
        ] {
            mine.add(theirs).expect("histograms share their bounds");
        }
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.retry_later += other.retry_later;
        self.errors += other.errors;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.first_unexpected = self.first_unexpected.take().or(other.first_unexpected);
    }

    /// Records one answer.
    pub fn record(&mut self, answer: Answer, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let status = answer.status;
        if (200..300).contains(&status) {
            self.latency_us.saturating_record(us);
            self.ok += 1;
            return;
        }
        self.rejected_latency_us.saturating_record(us);
        self.non_2xx += 1;
        if status == 503 && answer.retry_after {
            self.retry_later += 1;
            keep_first(&mut self.first_failure, || {
                "answered 503 with Retry-After".into()
            });
        } else {
            let describe = || format!("answered {status}");
            keep_first(&mut self.first_unexpected, describe);
            keep_first(&mut self.first_failure, describe);
        }
    }

    /// Records one transport failure.
    pub fn record_error(&mut self, error: String) {
        self.errors += 1;
        keep_first(&mut self.first_unexpected, || error.clone());
        keep_first(&mut self.first_failure, || error);
    }
}

/// Fills `slot` with a description unless it holds one already; the description is only built
/// then, so that a run of thousands of refusals formats one string, not thousands.
fn keep_first(slot: &mut Option<String>, describe: impl FnOnce() -> String) {
    if slot.is_none() {
        *slot = Some(describe());
    }
}

/// A histogram of microseconds from 1 µs to a minute, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Requests to send and the counter that hands them out.
struct Work {
    /// Where they go.
    addr: SocketAddr,
    /// All prepared requests of the run.
    requests: Arc<Vec<Prepared>>,
    /// First index of this phase.
    start: usize,
    /// Index of the next request to send.
    next: AtomicUsize,
    /// One past the last index of this phase.
    end: usize,
}

impl Work {
    /// The next request of this phase, if any is left.
    fn take(&self) -> Option<&Prepared> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        self.requests.get(index).filter(|_| index < self.end)
    }
}

/// Sends requests `range` of `requests` over `conns` to `addr`; returns the connections still
/// usable and what the phase saw.
pub async fn phase(
    conns: Vec<Conn>,
    addr: SocketAddr,
    requests: &Arc<Vec<Prepared>>,
    range: std::ops::Range<usize>,
) -> (Vec<Conn>, PhaseStats) {
    let work = Arc::new(Work {
        addr,
        requests: requests.clone(),
        start: range.start,
        next: AtomicUsize::new(range.start),
        end: range.end.min(requests.len()),
    });
    drive(conns, work).await
}

/// Opens all connections before any request is sent.
pub async fn connect_all(addr: SocketAddr, connections: usize) -> Result<Vec<Conn>, String> {
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        tasks.spawn(Conn::open(addr));
    }
    let mut conns = Vec::with_capacity(connections);
    while let Some(joined) = tasks.join_next().await {
        conns.push(joined.map_err(|e| format!("connect task failed: {e}"))??);
    }
    Ok(conns)
}

/// Runs one phase on every connection and returns the connections that are still usable.
async fn drive(conns: Vec<Conn>, work: Arc<Work>) -> (Vec<Conn>, PhaseStats) {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for conn in conns {
        tasks.spawn(connection_task(conn, work.clone()));
    }
    let mut stats = PhaseStats::new();
    let mut alive = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((conn, task_stats)) => {
                alive.extend(conn);
                stats.merge(task_stats);
            }
            Err(e) => stats.record_error(format!("connection task failed: {e}")),
        }
    }
    stats.elapsed = started.elapsed();
    let planned = work.end.saturating_sub(work.start) as u64;
    stats.unsent = planned.saturating_sub(stats.ok + stats.non_2xx + stats.errors);
    (alive, stats)
}

/// One connection: take a request, send it, record the answer, until the phase's work is done.
/// A connection the server closes is reopened; one that fails is reopened a few times at most.
async fn connection_task(conn: Conn, work: Arc<Work>) -> (Option<Conn>, PhaseStats) {
    let mut stats = PhaseStats::new();
    let mut conn = Some(conn);
    let mut failures = 0;
    while let Some(request) = work.take() {
        if conn.is_none() {
            match Conn::open(work.addr).await {
                Ok(fresh) => conn = Some(fresh),
                Err(error) => {
                    stats.record_error(error);
                    failures += 1;
                    if failures > MAX_RECONNECTS {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(live) = conn.as_mut() else { continue };
        let started = Instant::now();
        match live.exchange(request).await {
            Ok(answer) => {
                stats.record(answer, started.elapsed());
                if answer.close {
                    conn = None;
                }
            }
            Err(error) => {
                stats.record_error(error);
                failures += 1;
                conn = None;
                if failures > MAX_RECONNECTS {
                    break;
                }
            }
        }
    }
    (conn, stats)
}

/// The parts of an answer the generator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The server will close the connection (`connection: close`).
    pub close: bool,
    /// The answer carries `Retry-After`.
    pub retry_after: bool,
}

/// A parsed answer head: the answer and the total length of head and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// Status and connection handling.
    answer: Answer,
    /// Bytes of head plus body.
    total_len: usize,
}

/// One keep-alive HTTP/1.1 connection with its read buffer.
#[derive(Debug)]
pub struct Conn {
    /// The socket (`TCP_NODELAY`).
    stream: TcpStream,
    /// Bytes of the answer read so far.
    buf: Vec<u8>,
}

impl Conn {
    /// Opens a connection.
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its whole answer, within [`REQUEST_TIMEOUT`].
    pub async fn exchange(&mut self, request: &Prepared) -> Result<Answer, String> {
        let exchange = async {
            self.write(request)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            self.read_answer().await
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// Writes head and body, with one `writev` unless the socket takes only part of it.
    async fn write(&mut self, request: &Prepared) -> std::io::Result<()> {
        let (head, body) = (&request.head[..], &request.body[..]);
        let mut written = 0;
        while written < head.len() + body.len() {
            let n = if written < head.len() {
                let slices = [IoSlice::new(&head[written..]), IoSlice::new(body)];
                self.stream.write_vectored(&slices).await?
            } else {
                self.stream.write(&body[written - head.len()..]).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        Ok(())
    }

    /// Reads until one whole answer (head and body) is in.
    async fn read_answer(&mut self) -> Result<Answer, String> {
        self.buf.clear();
        loop {
            match parse_head(&self.buf)? {
                Some(head) if self.buf.len() == head.total_len => return Ok(head.answer),
                Some(head) if self.buf.len() > head.total_len => {
                    return Err("the server sent more than one answer".into())
                }
                None if self.buf.len() > MAX_HEAD => {
                    return Err(format!("answer head larger than {MAX_HEAD} bytes"))
                }
                _ => {}
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("reading the answer: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }
}

/// Parses an answer head once it is complete: status, `connection: close`, and where the body
/// ends (`content-length`; none for 1xx, 204 and 304). Chunked answers are refused: neither
/// server sends them for these requests.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed answer: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let mut body_len = 0;
    let mut close = false;
    let mut retry_after = false;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("");
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = value.trim().parse().map_err(|_| "bad content-length")?;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("unsupported transfer-encoding {value}"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if header.name.eq_ignore_ascii_case("retry-after") {
            retry_after = !value.trim().is_empty();
        }
    }
    if status < 200 || status == 204 || status == 304 {
        body_len = 0;
    }
    Ok(Some(Head {
        answer: Answer {
            status,
            close,
            retry_after,
        },
        total_len: head_len + body_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_heads_are_parsed() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        let head = parse_head(ok).unwrap().unwrap();
        assert_eq!(
            head.answer,
            Answer {
                status: 200,
                close: false,
                retry_after: false
            }
        );
        assert_eq!(head.total_len, ok.len());
        let partial = b"HTTP/1.1 204 No Content\r\ncontent-le";
        assert_eq!(parse_head(partial).unwrap(), None);
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 5\r\ncontent-length: 0\r\n\r\n";
        let head = parse_head(busy).unwrap().unwrap();
        assert_eq!(
            head.answer,
            Answer {
                status: 503,
                close: true,
                retry_after: true
            }
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).is_err());
    }

    #[test]
    fn overload_answers_are_told_from_other_failures() {
        let mut stats = PhaseStats::new();
        let answer = |status, retry_after| Answer {
            status,
            close: false,
            retry_after,
        };
        stats.record(answer(200, false), Duration::from_micros(900));
        stats.record(answer(503, true), Duration::from_micros(40));
        stats.record(answer(503, true), Duration::from_micros(60));
        assert_eq!((stats.ok, stats.non_2xx, stats.retry_later), (1, 2, 2));
        assert_eq!((stats.failed(), stats.unexpected()), (2, 0));
        assert_eq!(stats.latency_us.len(), 1);
        assert_eq!(stats.rejected_latency_us.max(), 60);
        assert_eq!(stats.first_unexpected, None);
        stats.record(answer(503, false), Duration::from_micros(50));
        stats.record_error("reset".into());
        assert_eq!(stats.unexpected(), 2);
        assert_eq!(stats.first_unexpected.as_deref(), Some("answered 503"));
        assert_eq!(
            stats.first_failure.as_deref(),
            Some("answered 503 with Retry-After")
        );
    }
}
