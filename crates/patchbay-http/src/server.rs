//! The connection loop (in place of `axum::serve`, which keeps each connection
//! to itself): HTTP/1.1 on a plain port; on a TLS port (rustls), HTTP/2 or
//! HTTP/1.1 as ALPN agrees, the handshake due within `header_read_timeout`.
//! At most `max_connections` at once, each cut off when
//! a request head does not arrive within `header_read_timeout` (the first one
//! counted from the connection's start, later ones from their first byte) or
//! when it sits idle between requests for `idle_timeout`. Every request carries
//! its client's address (`ConnectInfo<SocketAddr>`), which the failed-
//! authentication limit keys on. Shutdown stops accepting, lets in-flight
//! requests finish, then closes each connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// Limits on the connections a client can hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request head must arrive whole within this (the first from the connection's start).
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`, then waits
/// for the open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Per-connection failures (reset before accept) and running out of
                    // descriptors: neither ends the server; the latter backs off.
                    tracing::warn!(error = %e, "accept failed");
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => connection(stream, remote, app, limits, shutdown, false).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        _ = shutdown.cancelled() => None,
                        r = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)) => match r {
                            Ok(Ok(tls)) => Some(tls),
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake not completed in time");
                                None
                            }
                        },
                    };
                    if let Some(tls) = handshake {
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        connection(tls, remote, app, limits, shutdown, h2).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves one connection (HTTP/2 when `h2`, else HTTP/1.1) until it ends, is cut off
/// by the time-outs, or drains at shutdown.
async fn connection<S>(
    stream: S,
    remote: SocketAddr,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
    h2: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(h2));
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
        head: Vec::new(),
        replacement: None,
        heads: 0,
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        requests.request_started();
        req.extensions_mut().insert(ConnectInfo(remote));
        // HTTP/2 carries the host as `:authority`: give it to the routes as `Host`,
        // which links and the host check read.
        if !req.headers().contains_key(hyper::header::HOST)
            && let Some(value) =
                req.uri().authority().and_then(|a| hyper::header::HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(hyper::header::HOST, value);
        }
        let handled = app.clone().call(req);
        let requests = requests.clone();
        async move {
            let resp = handled.await;
            if resp.as_ref().is_ok_and(|r| r.extensions().get::<crate::sandbox::DropConnection>().is_some()) {
                // Close without a word: the connection loop drops the connection (and this future).
                requests.dropped.notify_one();
                std::future::pending::<()>().await;
            }
            requests.answered.fetch_add(1, Ordering::AcqRel);
            // The request stays in hand until its answer's body is written (or dropped).
            Ok::<_, std::convert::Infallible>(
                resp.unwrap_or_else(|never| match never {}).map(|body| Tracked { body, activity: requests }),
            )
        }
    });
    let mut tick = tokio::time::interval(
        limits.header_read_timeout.min(limits.idle_timeout).div_f64(4.0).max(Duration::from_millis(50)),
    );
    // No hyper timer: the time-outs are this loop's, so that the idle time between
    // requests and the time a head takes can differ.
    macro_rules! drive {
        ($conn:expr) => {{
            let conn = $conn;
            tokio::pin!(conn);
            let mut draining = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%remote, error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    _ = shutdown.cancelled(), if !draining => {
                        // Finish the requests in hand (if any), then close.
                        conn.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    _ = activity.dropped.notified() => {
                        tracing::debug!(%remote, "closing connection unanswered (sandbox fault)");
                        return;
                    }
                    _ = tick.tick() => {
                        if let Some(why) = activity.overdue(&limits) {
                            tracing::debug!(%remote, why, "closing connection");
                            return; // dropping the connection closes the socket
                        }
                    }
                }
            }
        }};
    }
    if h2 {
        drive!(
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(io, service)
        )
    } else {
        drive!(hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service))
    }
}

/// What a connection has been doing, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    /// Last time bytes were read or written.
    last_io: AtomicU64,
    /// Requests handed to the service and not yet answered.
    in_flight: AtomicUsize,
    /// When the head now being read began (ms + 1; 0 while none is being read).
    head_started: AtomicU64,
    /// Answers the service has produced (ever). The first write after each is its head;
    /// a head written while none is owed is hyper's own (a request it could not parse).
    answered: AtomicUsize,
    /// HTTP/2: frames between requests (pings, settings, window updates) begin no head;
    /// only the first request is due from the start, then the idle rule holds.
    h2: bool,
    /// Told when an answer asks for the connection to close unanswered (a sandbox `drop` rule).
    dropped: tokio::sync::Notify,
}

impl Activity {
    fn new(h2: bool) -> Self {
        // The first head is due from the connection's start.
        Self {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(1),
            answered: AtomicUsize::new(0),
            h2,
            dropped: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Notes a read; true when it began a new head.
    fn read(&self) -> bool {
        self.read_at(self.now())
    }

    fn read_at(&self, now: u64) -> bool {
        self.last_io.store(now, Ordering::Relaxed);
        // Bytes between requests begin a head (or are what a client sends after an
        // answer it did not wait for); both must become a request in time.
        !self.h2
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    fn in_head(&self) -> bool {
        self.head_started.load(Ordering::Acquire) != 0
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
    }

    fn request_finished(&self) {
        self.finished_at(self.now());
    }

    fn finished_at(&self, now: u64) {
        self.last_io.store(now, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection should be closed now, if it should.
    fn overdue(&self, limits: &ConnLimits) -> Option<&'static str> {
        self.overdue_at(self.now(), limits)
    }

    fn overdue_at(&self, now: u64, limits: &ConnLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None; // the request time-out governs a request in hand
        }
        match self.head_started.load(Ordering::Acquire) {
            0 => (now.saturating_sub(self.last_io.load(Ordering::Relaxed)) > limits.idle_timeout.as_millis() as u64)
                .then_some("idle keep-alive time-out"),
            started => (now.saturating_sub(started - 1) > limits.header_read_timeout.as_millis() as u64)
                .then_some("request head not received in time"),
        }
    }
}

/// An answer's body, which ends its request in [`Activity`] when hyper has written
/// it (or dropped it): a long download is a request in hand, not an idle connection.
struct Tracked {
    body: axum::body::Body,
    activity: Arc<Activity>,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.activity.request_finished();
    }
}

/// The socket, noting each read and write in its connection's [`Activity`].
///
/// It also puts hyper's own error answers in the face's shape: a request whose
/// head hyper cannot parse (a control byte in a header, say) never reaches the
/// service, and hyper answers it with an empty 400. That answer is recognised
/// here (a response head while the service owes none) and replaced by the same
/// status with the error body of the face whose path the request line names.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    /// The start of the head being read (its request line), for the face.
    head: Vec<u8>,
    /// A replacement answer and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    /// Answers of the service whose heads have begun to be written.
    heads: usize,
}

/// How much of a head is kept to find its request line.
const HEAD_KEPT: usize = 2048;

impl<S: AsyncRead + AsyncWrite + Unpin> Watched<S> {
    /// Whether `first` is hyper's own error head; if so the replacement is queued.
    fn replace_own_error(&mut self, first: &[u8]) -> bool {
        if first.is_empty() {
            return false;
        }
        // The first write after the service answered begins that answer's head.
        if self.activity.answered.load(Ordering::Acquire) > self.heads {
            self.heads += 1;
            return false;
        }
        // Otherwise (a continuation, a body, 100 Continue, or hyper's own answer) only a
        // head with an error status is looked at further.
        let Some(rest) = first.strip_prefix(b"HTTP/1.").and_then(|r| r.get(2..)) else { return false };
        let status = rest.get(..3).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse::<u16>().ok());
        let Some(status) = status else { return false };
        if status < 400 {
            return false;
        }
        // Only while a head is being read and no request is in hand: hyper's refusal
        // of that head (anything else written then would be a body, never a head).
        if !self.activity.in_head() || self.activity.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        self.replacement = Some((own_error_answer(status, &self.head), 0));
        true
    }

    /// Writes what is left of the replacement.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.replacement {
            if *done == bytes.len() {
                self.replacement = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The answer for a request hyper refused before the service saw it: the same
/// status, `connection: close`, and the error body of the face its path names.
fn own_error_answer(status: u16, head: &[u8]) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let path = line.split(|&b| b == b' ').nth(1).and_then(|p| std::str::from_utf8(p).ok()).unwrap_or("/");
    let face = crate::Face::of_path(path);
    let code = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    let message = match status {
        431 => "The request headers are too large.",
        414 => "The request target is too long.",
        505 => "The HTTP version is not supported.",
        _ => {
            "The request could not be parsed: a malformed request line or header (for example a control character in a header value)."
        }
    };
    let body = face.error_body(code, message).to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        code.as_u16(),
        code.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if self.activity.read() {
                self.head.clear();
            }
            if self.activity.in_head() && self.head.len() < HEAD_KEPT {
                let new = &buf.filled()[before..];
                let take = new.len().min(HEAD_KEPT - self.head.len());
                self.head.extend_from_slice(&new[..take]);
            }
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_replacement(cx))?;
        if self.replace_own_error(buf) {
            // hyper's bytes are taken whole; the replacement goes out instead.
            return match self.poll_replacement(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_replacement(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && self.replace_own_error(first)
        {
            let all = bufs.iter().map(|b| b.len()).sum();
            return match self.poll_replacement(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(all)),
            };
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            max_connections: 1,
        }
    }

    #[test]
    fn the_first_head_is_due_from_the_start_then_idle_and_head_rules_alternate() {
        let l = limits();
        let a = Activity::new(false);
        assert_eq!(a.overdue_at(0, &l), None);
        assert_eq!(a.overdue_at(100, &l), None);
        assert_eq!(a.overdue_at(101, &l), Some("request head not received in time"), "nothing sent at all");
        a.read_at(50);
        assert_eq!(a.overdue_at(101, &l), Some("request head not received in time"), "a partial first head");
        a.request_started();
        assert_eq!(a.overdue_at(10_000, &l), None, "a request in hand is not cut");
        a.read_at(10_001); // its body
        a.answered.fetch_add(1, Ordering::AcqRel);
        assert_eq!(a.overdue_at(20_000, &l), None, "its answer is being written: still in hand");
        a.finished_at(10_002);
        assert_eq!(a.overdue_at(10_302, &l), None, "idle, within the idle time-out");
        assert_eq!(a.overdue_at(10_303, &l), Some("idle keep-alive time-out"));
        a.read_at(10_200); // the next head began
        assert_eq!(a.overdue_at(10_300, &l), None);
        assert_eq!(a.overdue_at(10_301, &l), Some("request head not received in time"));
        a.request_started();
        a.request_started(); // pipelined
        a.finished_at(10_400);
        assert_eq!(a.overdue_at(99_999, &l), None, "one still in hand");
        a.finished_at(10_500);
        assert_eq!(a.overdue_at(10_800, &l), None);
        assert_eq!(a.overdue_at(10_801, &l), Some("idle keep-alive time-out"));
    }
}
