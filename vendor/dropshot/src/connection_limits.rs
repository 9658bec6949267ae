// Copyright 2026 Oxide Computer Company (vendored dropshot: connection-limits.patch)

//! Limits on what one client's connection may hold, for plain-HTTP servers
//! (see the `ServerBuilder` options that set them): how long a read or write
//! may wait ([`ServerBuilder::idle_timeout`]), how long a connection may go
//! without a request under way before its client has sent a complete request
//! head ([`ServerBuilder::request_head_timeout`]), how long a request's body
//! may take to arrive ([`ServerBuilder::request_body_timeout`]), and how many
//! connections the server holds at once ([`ServerBuilder::max_connections`]).
//!
//! The head and body limits are budgets, not idle timers: a client that
//! trickles one byte at a time extends neither.  Without these options nothing
//! here runs.
//!
//! [`ServerBuilder::idle_timeout`]: crate::ServerBuilder::idle_timeout
//! [`ServerBuilder::request_head_timeout`]: crate::ServerBuilder::request_head_timeout
//! [`ServerBuilder::request_body_timeout`]: crate::ServerBuilder::request_body_timeout
//! [`ServerBuilder::max_connections`]: crate::ServerBuilder::max_connections

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an operator may want to count about connections (see
/// [`crate::ServerBuilder::connection_observer`]).  Every method does nothing
/// unless implemented.
pub trait ConnectionObserver: Send + Sync + 'static {
    /// A connection was accepted and is being served.
    fn opened(&self) {}
    /// A served connection ended, for whatever reason.
    fn closed(&self) {}
    /// A connection was refused at [`crate::ServerBuilder::max_connections`].
    fn refused(&self) {}
    /// A connection was closed at one of its deadlines.
    fn timed_out(&self, _deadline: ConnectionDeadline) {}
}

/// Which of a connection's deadlines ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionDeadline {
    /// No complete request head within the head timeout of the connection's
    /// start or of its previous request's end.
    Head,
    /// A read or a write waited longer than the idle timeout.
    Idle,
}

/// The bytes written to a connection refused at the connection limit before
/// it is closed: a complete HTTP/1.1 response (with `Connection: close`),
/// made anew for each refusal (so that it can carry a request ID of its own).
pub type Refusal = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

/// The limits a server was built with.
#[derive(Clone, Default)]
pub(crate) struct ConnectionLimits {
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_head_bytes: Option<usize>,
    pub(crate) head_timeout: Option<Duration>,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) refusal: Option<Refusal>,
    pub(crate) observer: Option<Arc<dyn ConnectionObserver>>,
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("idle_timeout", &self.idle_timeout)
            .field("max_head_bytes", &self.max_head_bytes)
            .field("head_timeout", &self.head_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl ConnectionLimits {
    /// Whether any per-connection limit is set (else connections are served
    /// as dropshot always did).
    fn any(&self) -> bool {
        self.idle_timeout.is_some()
            || self.head_timeout.is_some()
            || self.max_connections.is_some()
            || self.observer.is_some()
    }
}

/// Connections refused at the limit whose answer is still being read by
/// their clients at most (see [`Admission::refuse`]).
const MAX_LINGERING: usize = 64;

/// How long a refused connection is kept open for its client to read the
/// answer.
const LINGER: Duration = Duration::from_secs(1);

/// Counts the server's open connections and refuses those past the limit.
pub(crate) struct Admission {
    limits: ConnectionLimits,
    open: Arc<AtomicUsize>,
    lingering: Arc<tokio::sync::Semaphore>,
}

impl Admission {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Admission {
            limits,
            open: Arc::new(AtomicUsize::new(0)),
            lingering: Arc::new(tokio::sync::Semaphore::new(MAX_LINGERING)),
        }
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// A newly accepted connection, limited, with the state its requests
    /// share with it; `None` when it was refused (answered and closed here).
    pub(crate) fn admit(
        &self,
        sock: TcpStream,
    ) -> Option<(Limited<TcpStream>, Option<Arc<ConnState>>)> {
        if !self.limits.any() {
            return Some((Limited::unlimited(sock), None));
        }
        if self
            .limits
            .max_connections
            .is_some_and(|max| self.open.load(Ordering::Relaxed) >= max)
        {
            self.refuse(sock);
            return None;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        if let Some(o) = &self.limits.observer {
            o.opened();
        }
        let state = Arc::new(ConnState::new());
        let token = OpenToken {
            open: Arc::clone(&self.open),
            observer: self.limits.observer.clone(),
        };
        let limited = Limited {
            inner: sock,
            idle_timeout: self.limits.idle_timeout,
            head_timeout: self.limits.head_timeout,
            state: Some(Arc::clone(&state)),
            read: Wait::default(),
            write: Wait::default(),
            token: Some(token),
            reported: false,
        };
        Some((limited, Some(state)))
    }

    /// Answers a connection over the limit with the refusal and closes it,
    /// without reading its request.  Closing a socket with unread data makes
    /// the kernel reset it, which can destroy the answer before the client
    /// reads it; so, while few refused connections are lingering, the socket
    /// is shut for writing and read to its end (for at most [`LINGER`])
    /// before it is closed.
    fn refuse(&self, sock: TcpStream) {
        if let Some(o) = &self.limits.observer {
            o.refused();
        }
        let Some(refusal) = &self.limits.refusal else { return };
        // A new socket's send buffer is empty: the whole answer fits.
        let _ = sock.try_write(&refusal());
        let Ok(permit) = Arc::clone(&self.lingering).try_acquire_owned()
        else {
            return;
        };
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut sock = sock;
            let _ = sock.shutdown().await;
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(LINGER, async {
                while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            drop(permit);
        });
    }
}

/// Held by a served connection's stream: one open connection fewer once the
/// stream (and so its socket) is gone.
struct OpenToken {
    open: Arc<AtomicUsize>,
    observer: Option<Arc<dyn ConnectionObserver>>,
}

impl Drop for OpenToken {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(o) = &self.observer {
            o.closed();
        }
    }
}

/// What a connection's stream and its requests share: whether a request is
/// under way and, when none is, since when the connection has been waiting
/// for the rest of one.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Requests of this connection under way (HTTP/2 may have several).
    in_flight: AtomicUsize,
    /// When the connection's head budget began, in milliseconds since
    /// [`epoch`]: its start, or the first byte after its previous request
    /// ended; [`IN_REQUEST`] while requests are under way, [`KEEP_ALIVE`]
    /// between requests until a byte arrives (an idle keep-alive connection
    /// is the idle timeout's to end).
    waiting_since: AtomicU64,
}

const IN_REQUEST: u64 = u64::MAX;
const KEEP_ALIVE: u64 = u64::MAX - 1;

/// The instant connection times are counted from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_millis())
        .unwrap_or(KEEP_ALIVE - 1)
        .min(KEEP_ALIVE - 1)
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(millis_since_epoch(Instant::now())),
        }
    }

    /// When the connection's head budget began, if it is running.
    fn waiting_since(&self) -> Option<Instant> {
        match self.waiting_since.load(Ordering::Acquire) {
            IN_REQUEST | KEEP_ALIVE => None,
            ms => Some(epoch() + Duration::from_millis(ms)),
        }
    }

    /// Bytes arrived: between requests, the next request's head budget
    /// starts now.
    fn received(&self) {
        if self.waiting_since.load(Ordering::Relaxed) == KEEP_ALIVE {
            let now = millis_since_epoch(Instant::now());
            // A request that began meanwhile keeps its IN_REQUEST.
            let _ = self.waiting_since.compare_exchange(
                KEEP_ALIVE,
                now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// A request under way on a connection (from its complete head until its
/// response body has been written or dropped).
pub(crate) struct RequestGuard(Arc<ConnState>);

impl RequestGuard {
    pub(crate) fn new(state: Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.waiting_since.store(IN_REQUEST, Ordering::Release);
        RequestGuard(state)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.waiting_since.store(KEEP_ALIVE, Ordering::Release);
        }
    }
}

/// A response body that keeps its request under way until it is written.
pub(crate) struct GuardedBody {
    pub(crate) inner: crate::Body,
    pub(crate) _guard: RequestGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails once its deadline has passed, however the
/// bytes trickle in.
pub(crate) struct TimedBody<B> {
    inner: B,
    due: Instant,
    limit: Duration,
    /// Made only when the body first has to wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    /// `inner`, which must have arrived in full within `limit` of now.
    pub(crate) fn new(inner: B, limit: Duration) -> Self {
        TimedBody { inner, due: Instant::now() + limit, limit, timer: None }
    }
}

/// A request body that did not arrive within the server's body timeout:
/// answered with a 408.
#[derive(Debug)]
pub struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let due = this.due;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(
                        BodyTimedOut(this.limit),
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's stream under its limits: a read or write that waits longer
/// than the idle timeout fails with `TimedOut`, and so does a read while no
/// request is under way once the head timeout has passed since the
/// connection's start or, after a request, since the next request's first
/// byte; either ends the connection.
///
/// Cheap on the hot path: a wait's start is an `Instant::now()` taken only
/// when a read or write must wait, and each direction keeps one timer for
/// the connection's life, reset only when its deadline moves.
pub(crate) struct Limited<S> {
    inner: S,
    idle_timeout: Option<Duration>,
    head_timeout: Option<Duration>,
    state: Option<Arc<ConnState>>,
    read: Wait,
    write: Wait,
    token: Option<OpenToken>,
    /// Whether a deadline has been reported to the observer already.
    reported: bool,
}

impl<S> Limited<S> {
    fn unlimited(inner: S) -> Self {
        Limited {
            inner,
            idle_timeout: None,
            head_timeout: None,
            state: None,
            read: Wait::default(),
            write: Wait::default(),
            token: None,
            reported: false,
        }
    }

    /// The deadline error, reported to the observer once.
    fn timed_out(&mut self, which: ConnectionDeadline) -> std::io::Error {
        if !self.reported {
            self.reported = true;
            if let Some(o) = self.token.as_ref().and_then(|t| t.observer.as_ref()) {
                o.timed_out(which);
            }
        }
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            match which {
                ConnectionDeadline::Head => {
                    "no complete request head within the head timeout"
                }
                ConnectionDeadline::Idle => "the connection was idle for too long",
            },
        )
    }
}

/// One direction's current wait, if any, and its timer.
#[derive(Default)]
struct Wait {
    since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Wait {
    /// The operation completed: no wait is under way.
    fn done(&mut self) {
        self.since = None;
    }

    /// When the current wait began.
    fn started(&mut self) -> Instant {
        *self.since.get_or_insert_with(Instant::now)
    }

    /// Ready once `due` has passed.
    fn until(&mut self, due: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() > due {
            timer.as_mut().reset(due);
        }
        loop {
            match timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if Instant::now() >= due => return Poll::Ready(()),
                // Set for an earlier wait: move it to this one's end.
                Poll::Ready(()) => timer.as_mut().reset(due),
            }
        }
    }
}

/// The earlier of two deadlines, with which one it is.
fn earliest(
    idle: Option<Instant>,
    head: Option<Instant>,
) -> Option<(Instant, ConnectionDeadline)> {
    match (idle, head) {
        (Some(i), Some(h)) if h <= i => Some((h, ConnectionDeadline::Head)),
        (Some(i), _) => Some((i, ConnectionDeadline::Idle)),
        (None, Some(h)) => Some((h, ConnectionDeadline::Head)),
        (None, None) => None,
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.read.done();
                if let Some(state) = &this.state {
                    if buf.filled().len() > before {
                        state.received();
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let idle = this.idle_timeout.map(|t| this.read.started() + t);
                let head = match (this.head_timeout, &this.state) {
                    (Some(t), Some(state)) => state.waiting_since().map(|s| s + t),
                    _ => None,
                };
                let Some((due, which)) = earliest(idle, head) else {
                    return Poll::Pending;
                };
                match this.read.until(due, cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => Poll::Ready(Err(this.timed_out(which))),
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> Limited<S> {
    /// A write that is pending: fails once it has waited the idle timeout.
    fn write_pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let Some(t) = self.idle_timeout else { return Poll::Pending };
        let due = self.write.started() + t;
        match self.write.until(due, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                Poll::Ready(Err(self.timed_out(ConnectionDeadline::Idle)))
            }
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.write.done();
                Poll::Ready(result)
            }
            Poll::Pending => this.write_pending(cx),
        }
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.write.done();
                Poll::Ready(result)
            }
            Poll::Pending => this.write_pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
