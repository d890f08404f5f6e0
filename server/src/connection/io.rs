//! A connection's socket: notes reads for its [`Activity`], holds its slot under the
//! connection cap until the socket closes (after a WebSocket upgrade too), fails once the
//! connection is cut so that nothing blocked on it outlives the cut, and puts JSON bodies on
//! hyper's own error answers ([`error_page`](super::error_page)).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::activity::Activity;
use super::error_page;

pin_project_lite::pin_project! {
    /// The socket of one connection; see the module documentation.
    pub struct TrackedIo {
        #[pin]
        stream: TcpStream,
        activity: Arc<Activity>,
        // Polled only when the socket would block: no cost on the fast path.
        cut: Pin<Box<WaitForCancellationFutureOwned>>,
        // An error page still to be written in place of hyper's answer.
        page: Option<Bytes>,
        _slot: OwnedSemaphorePermit,
    }
}

impl TrackedIo {
    pub fn new(
        stream: TcpStream,
        activity: Arc<Activity>,
        cut: CancellationToken,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self { stream, activity, cut: Box::pin(cut.cancelled_owned()), page: None, _slot: slot }
    }
}

/// `Pending`, unless the connection was cut meanwhile: then an error, so that whoever waits on
/// the socket gives up.
fn pending_unless_cut<T>(
    cut: &mut Pin<Box<WaitForCancellationFutureOwned>>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match cut.as_mut().poll(cx) {
        Poll::Ready(()) => {
            Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection closed by the server")))
        }
        Poll::Pending => Poll::Pending,
    }
}

/// Writes what is left of an error page.
fn poll_page(
    page: &mut Option<Bytes>,
    mut stream: Pin<&mut TcpStream>,
    cut: &mut Pin<Box<WaitForCancellationFutureOwned>>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while let Some(bytes) = page.as_mut().filter(|b| !b.is_empty()) {
        match stream.as_mut().poll_write(cx, bytes) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => bytes.advance(n),
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Pending => return pending_unless_cut(cut, cx),
        }
    }
    *page = None;
    Poll::Ready(Ok(()))
}

impl AsyncRead for TrackedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        match this.stream.poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.activity.on_read(Instant::now());
                Poll::Ready(Ok(()))
            }
            Poll::Pending => pending_unless_cut(this.cut, cx),
            ready => ready,
        }
    }
}

impl TrackedIo {
    /// hyper's own error answer is written only while no request is being served.
    fn swap_error_page(self: Pin<&mut Self>, written: &[u8]) -> Option<usize> {
        let this = self.project();
        this.activity.waiting_since()?;
        let (taken, page) = error_page::replace(written)?;
        *this.page = Some(page);
        Some(taken)
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.as_mut().project();
        ready!(poll_page(this.page, this.stream, this.cut, cx))?;
        if let Some(taken) = self.as_mut().swap_error_page(buf) {
            return Poll::Ready(Ok(taken));
        }
        let this = self.project();
        match this.stream.poll_write(cx, buf) {
            Poll::Pending => pending_unless_cut(this.cut, cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.as_mut().project();
        ready!(poll_page(this.page, this.stream, this.cut, cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(taken) = self.as_mut().swap_error_page(first) {
                return Poll::Ready(Ok(taken));
            }
        }
        let this = self.project();
        match this.stream.poll_write_vectored(cx, bufs) {
            Poll::Pending => pending_unless_cut(this.cut, cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        ready!(poll_page(this.page, this.stream.as_mut(), this.cut, cx))?;
        this.stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        ready!(poll_page(this.page, this.stream.as_mut(), this.cut, cx))?;
        this.stream.poll_shutdown(cx)
    }
}
