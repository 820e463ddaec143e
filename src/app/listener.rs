//! Serving a listener with bounds a public address needs: a cap on open connections, a deadline
//! for the request head, an idle timeout, a small read buffer — and an accept loop that never
//! dies.
//!
//! `axum::serve` cannot do this: it runs hyper without a timer (so hyper's header-read timeout
//! is off), has no idle timeout and no connection cap, and `tower::limit` bounds requests, not
//! sockets. So each listener gets its own loop here: a permit of the listener's semaphore is
//! taken *before* `accept()` and moved into the connection's task, so a connection beyond the
//! cap waits in the kernel's backlog for a slot instead of costing a file descriptor and memory;
//! each connection is served by hyper's HTTP/1 builder with a timer, `header_read_timeout` and
//! `max_buf_size`, over an [`IdleTimeout`] stream. The graceful stop goes through
//! `hyper_util::server::graceful`: in-flight requests finish, idle connections close.

use crate::util::throttle::Throttle;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

/// The largest request head hyper buffers (request line and headers). Webhook and interaction
/// heads are well under 2 KiB; 16 KiB leaves room for proxies' headers and bounds what a slow
/// client can make ringside hold per connection.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// After a failed `accept()` (out of file descriptors, most likely) the loop waits this long
/// before trying again instead of spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The bounds of one listener (`server.header_read_timeout_secs`, `idle_timeout_secs`,
/// `max_connections`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` resolves, then lets in-flight requests finish
/// (the caller bounds that wait). `name` names the listener in logs and metrics.
pub fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    name: &'static str,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<io::Result<()>> {
    tokio::spawn(accept_loop(listener, router, limits, name, stop))
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    name: &'static str,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let accept_errors = Throttle::new(Duration::from_secs(1));
    let service = TowerToHyperService::new(router);
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; if it were, no connection could be served.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    metrics::counter!("ringside_accept_errors_total", "listener" => name)
                        .increment(1);
                    if let Some(count) = accept_errors.admit("accept") {
                        tracing::warn!(listener = name, %error, count, "cannot accept connections");
                    }
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        metrics::counter!("ringside_connections_total", "listener" => name).increment(1);
        let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(io, service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's doing (a reset, a timeout, a malformed head); the
            // connection is closed either way and the slot freed.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A stream that fails with `TimedOut` once no byte went either way for `timeout`: the idle
/// timeout, for a connection that sends nothing (before its first request or between requests)
/// or stops reading its answer.
pub struct IdleTimeout<S> {
    inner: S,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn touched(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }

    /// `Pending` while time remains (and the timer will wake the task), else the error.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle too long",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touched();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.expired(cx).map(Err),
        }
    }
}

impl<S> IdleTimeout<S> {
    /// A write's outcome: bytes written count as traffic; a write that cannot proceed fails
    /// once the connection has been idle too long.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match outcome {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    self.touched();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.expired(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, outcome)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.expired(cx).map(Err),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises the open-files soft limit to the hard limit, and warns when `needed` descriptors
/// (two listeners at their caps, plus the store, the clients and the logs) do not fit under it.
pub fn raise_open_files_limit(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit.current = limit.maximum,
            Err(error) => tracing::debug!(%error, "cannot raise the open-files limit"),
        }
    }
    // `None` means unlimited.
    if let Some(current) = limit.current
        && current < needed
    {
        tracing::warn!(
            open_files_limit = current,
            needed,
            "the open-files limit is below 2 x server.max_connections + 64: connections beyond it are refused by the system; lower server.max_connections or raise the limit (ulimit -n, LimitNOFILE=)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_times_out_and_traffic_keeps_it_open() {
        let (client, server) = tokio::io::duplex(64);
        let mut idle = IdleTimeout::new(server, Duration::from_secs(60));
        let mut client = client;
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 8];
            let mut got = Vec::new();
            loop {
                match idle.read(&mut buffer).await {
                    Ok(0) => return (got, None),
                    Ok(n) => got.extend_from_slice(&buffer[..n]),
                    Err(error) => return (got, Some(error.kind())),
                }
            }
        });
        // A byte every 59 s keeps it open past 60 s.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(59)).await;
            client.write_all(b"x").await.unwrap();
        }
        let (got, error) = reader.await.unwrap();
        assert_eq!(got, b"xxx");
        assert_eq!(error, Some(io::ErrorKind::TimedOut));
    }
}
