//! The process's metrics, in Prometheus text format on a listener of their own
//! (`LEADPING_METRICS_BIND`), so that they are never exposed with the API.
//!
//! What happens in this process is counted as it happens (requests, delivery attempts, store
//! failures, log lines dropped); what lives in the database (the outbox's backlog, seats taken and
//! given back) is read from it at each scrape, so every replica reports the same, true figures
//! for the shared store. The registry is process-wide, like the process's logger: every layer
//! that has something to count reaches it without threading a handle through the API.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::App;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadlineLabel {
    deadline: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<OperationLabel>,
    deliveries: Family<OutcomeLabel, Counter>,
    store_errors: Family<KindLabel, Counter>,
    log_lines_dropped: Counter,
    connections_open: Gauge,
    connections_refused: Counter,
    connections_timed_out: Family<DeadlineLabel, Counter>,
    outbox_waiting: Gauge,
    outbox_oldest_due_age: Gauge<f64, AtomicU64>,
    seats_taken: Counter,
    seats_released: Counter,
    up: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 8 s: a refused request to a create or resend waiting for its email.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("leadping");
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "http_requests",
        "API requests answered, by operation and status",
        requests.clone(),
    );
    let latency: HistogramFamily<OperationLabel> =
        Family::new_with_constructor(latency_histogram as fn() -> Histogram);
    registry.register(
        "http_request_duration_seconds",
        "Time from a request's inputs being read to its answer, by operation",
        latency.clone(),
    );
    let deliveries = Family::<OutcomeLabel, Counter>::default();
    registry.register(
        "delivery_attempts",
        "Email delivery attempts by outcome: accepted, refused (for good) or deferred (retried)",
        deliveries.clone(),
    );
    let store_errors = Family::<KindLabel, Counter>::default();
    registry.register(
        "store_errors",
        "Requests failed by the database: outage (answered 503) or bug (answered 500)",
        store_errors.clone(),
    );
    let log_lines_dropped = Counter::default();
    registry.register(
        "log_lines_dropped",
        "Log lines dropped because the log writer fell behind",
        log_lines_dropped.clone(),
    );
    let connections_open = Gauge::default();
    registry.register(
        "http_connections_open",
        "API connections open now (at most LEADPING_MAX_CONNECTIONS)",
        connections_open.clone(),
    );
    let connections_refused = Counter::default();
    registry.register(
        "http_connections_refused",
        "API connections answered 503 and closed at once: the connection limit was reached",
        connections_refused.clone(),
    );
    let connections_timed_out = Family::<DeadlineLabel, Counter>::default();
    registry.register(
        "http_connections_timed_out",
        "API connections closed at a deadline: head (no complete request head in time) or idle (a read or write waited too long)",
        connections_timed_out.clone(),
    );
    let outbox_waiting = Gauge::default();
    registry.register(
        "outbox_waiting",
        "Emails waiting to be sent (every replica's), at the scrape",
        outbox_waiting.clone(),
    );
    let outbox_oldest_due_age = Gauge::<f64, AtomicU64>::default();
    registry.register(
        "outbox_oldest_due_age_seconds",
        "How long the earliest-due waiting email has been due (0 when none is)",
        outbox_oldest_due_age.clone(),
    );
    let seats_taken = Counter::default();
    registry.register(
        "seats_taken",
        "Seats taken since the database began (from the seat ledger)",
        seats_taken.clone(),
    );
    let seats_released = Counter::default();
    registry.register(
        "seats_released",
        "Seats given back since the database began (from the seat ledger)",
        seats_released.clone(),
    );
    let up = Gauge::default();
    registry.register(
        "store_up",
        "1 when the last scrape could read the database, 0 otherwise",
        up.clone(),
    );
    Metrics {
        registry,
        requests,
        latency,
        deliveries,
        store_errors,
        log_lines_dropped,
        connections_open,
        connections_refused,
        connections_timed_out,
        outbox_waiting,
        outbox_oldest_due_age,
        seats_taken,
        seats_released,
        up,
    }
});

/// Counts an answered API request.
pub fn request(operation: &'static str, status: u16, elapsed: Duration) {
    METRICS
        .requests
        .get_or_create(&RequestLabels { operation, status })
        .inc();
    METRICS
        .latency
        .get_or_create(&OperationLabel { operation })
        .observe(elapsed.as_secs_f64());
}

/// Counts a request that matched no operation (an unknown path or method), by status.
pub fn unmatched(status: u16) {
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            operation: "unmatched",
            status,
        })
        .inc();
}

/// Counts a delivery attempt: `accepted`, `refused` or `deferred`.
pub fn delivery_attempt(outcome: &'static str) {
    METRICS
        .deliveries
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}

/// Counts a request the database failed: `outage` or `bug`.
pub fn store_error(kind: &'static str) {
    METRICS
        .store_errors
        .get_or_create(&KindLabel { kind })
        .inc();
}

/// Counts the API's connections: opened, closed, refused at the limit, closed at a deadline.
#[derive(Debug)]
pub struct Connections;

impl dropshot::ConnectionObserver for Connections {
    fn opened(&self) {
        METRICS.connections_open.inc();
    }
    fn closed(&self) {
        METRICS.connections_open.dec();
    }
    fn refused(&self) {
        METRICS.connections_refused.inc();
    }
    fn timed_out(&self, deadline: dropshot::ConnectionDeadline) {
        let deadline = match deadline {
            dropshot::ConnectionDeadline::Head => "head",
            dropshot::ConnectionDeadline::Idle => "idle",
        };
        METRICS
            .connections_timed_out
            .get_or_create(&DeadlineLabel { deadline })
            .inc();
    }
}

/// Raises a counter to `total` (what the store or another counter says it is now).
fn catch_up(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// The metrics as Prometheus reads them (OpenMetrics text), with the store's figures read now.
pub async fn render(app: &App) -> String {
    let m = &*METRICS;
    catch_up(&m.log_lines_dropped, crate::logging::dropped_log_lines());
    let read = app
        .store
        .transaction(|tx| {
            Ok::<_, crate::store::StoreError>((tx.outbox_backlog()?, tx.seat_totals()?))
        })
        .await;
    match read {
        Ok(((waiting, oldest), (taken, released))) => {
            m.up.set(1);
            m.outbox_waiting.set(waiting);
            let age = oldest.map_or(0.0, |due| {
                (chrono::Utc::now() - due).num_milliseconds().max(0) as f64 / 1000.0
            });
            m.outbox_oldest_due_age.set(age);
            catch_up(&m.seats_taken, u64::try_from(taken).unwrap_or(0));
            catch_up(&m.seats_released, u64::try_from(released).unwrap_or(0));
        }
        Err(e) => {
            m.up.set(0);
            slog::warn!(app.log, "metrics: the store could not be read"; "error" => %e);
        }
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}
