//! Request smuggling: a request that carries both `Content-Length` and
//! `Transfer-Encoding` means different things to different parsers. hyper follows RFC
//! 9112 §6.3 — `Transfer-Encoding` wins, the `Content-Length` header is removed and the
//! connection is closed after the request — so by the time a handler sees the request,
//! nothing says it was ambiguous. This reader sits between the socket and hyper, follows
//! HTTP/1.1 framing (heads, fixed-length and chunked bodies) and, when a head carries
//! both headers, adds [`MARK`] to it: the gateway then refuses the request (`400`)
//! before any decision, and nothing of it reaches an upstream.
//!
//! It only watches; every byte is passed on unchanged (but the one added header line).
//! Anything it does not understand (an HTTP/2 preface, an upgrade, a head hyper will
//! refuse anyway) ends the watching for that connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The header added to an ambiguous head.
pub const MARK: &str = "x-keygate-ambiguous-framing";
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    Head(Head),
    Fixed(u64),
    Chunked(Chunk),
    Off,
}

/// A request head being read: everything so far, and how much was passed on.
#[derive(Debug, Default)]
struct Head {
    buf: Vec<u8>,
    sent: usize,
}

#[derive(Debug)]
enum Chunk {
    Size(Vec<u8>),
    Data(u64),
    Trailer(Vec<u8>),
}

/// The framing watcher over a connection's stream.
#[derive(Debug)]
pub struct Watch<T> {
    inner: T,
    state: State,
    out: Vec<u8>,
    at: usize,
}

impl<T> Watch<T> {
    /// Watch `inner`'s requests.
    pub fn new(inner: T) -> Self {
        Watch {
            inner,
            state: State::Head(Head::default()),
            out: Vec::new(),
            at: 0,
        }
    }

    /// Pass `inner` through without watching.
    pub fn off(inner: T) -> Self {
        Watch {
            inner,
            state: State::Off,
            out: Vec::new(),
            at: 0,
        }
    }

    /// Follow `input`, appending what hyper should read to `self.out`.
    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match &mut self.state {
                State::Off => {
                    self.out.extend_from_slice(input);
                    return;
                }
                State::Fixed(n) => {
                    let take = (*n).min(input.len() as u64) as usize;
                    self.out.extend_from_slice(&input[..take]);
                    *n -= take as u64;
                    input = &input[take..];
                    if *n == 0 {
                        self.state = State::Head(Head::default());
                    }
                }
                State::Chunked(c) => {
                    let used = chunk_step(c, input);
                    self.out.extend_from_slice(&input[..used.0]);
                    input = &input[used.0..];
                    if used.1 {
                        self.state = State::Head(Head::default());
                    }
                }
                State::Head(head) => {
                    let before = head.buf.len();
                    head.buf.extend_from_slice(input);
                    let from = before.saturating_sub(3);
                    let Some(end) = find(&head.buf[from..], b"\r\n\r\n").map(|e| e + from) else {
                        // Pass the head on as it arrives (hyper's header timeout sees a
                        // dripping peer), holding back only what may start the end.
                        let held = (1..=3)
                            .rev()
                            .find(|n| head.buf.ends_with(&b"\r\n\r"[..*n]))
                            .unwrap_or(0);
                        let upto = head.buf.len() - held;
                        self.out.extend_from_slice(&head.buf[head.sent..upto]);
                        head.sent = upto;
                        if head.buf.len() > MAX_HEAD {
                            let rest = head.buf[head.sent..].to_vec();
                            self.out.extend_from_slice(&rest);
                            self.state = State::Off;
                        }
                        return;
                    };
                    let head_len = end + 4;
                    input = &input[head_len - before..];
                    let (next, marked) = after_head(&head.buf[..head_len]);
                    self.out.extend_from_slice(&head.buf[head.sent..end + 2]);
                    if marked {
                        self.out.extend_from_slice(MARK.as_bytes());
                        self.out.extend_from_slice(b": 1\r\n");
                    }
                    self.out.extend_from_slice(b"\r\n");
                    self.state = next;
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What follows a request head, and whether the head is ambiguous.
fn after_head(head: &[u8]) -> (State, bool) {
    if head.starts_with(b"PRI * HTTP/2.0") {
        return (State::Off, false);
    }
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return (State::Off, false);
    }
    let (mut lengths, mut te, mut chunked, mut upgrade) = (Vec::new(), false, false, false);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths.push(
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok()),
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = true;
            chunked = h.value.to_ascii_lowercase().ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    if te && !lengths.is_empty() {
        return (State::Off, true);
    }
    if upgrade || req.method == Some("CONNECT") || (te && !chunked) || lengths.len() > 1 {
        return (State::Off, false);
    }
    match (te, lengths.first()) {
        (true, _) => (State::Chunked(Chunk::Size(Vec::new())), false),
        (false, Some(Some(0))) | (false, None) => (State::Head(Head::default()), false),
        (false, Some(Some(n))) => (State::Fixed(*n), false),
        (false, Some(None)) => (State::Off, false),
    }
}

/// Follow a chunked body over `input`: (bytes consumed, body finished).
fn chunk_step(c: &mut Chunk, input: &[u8]) -> (usize, bool) {
    let mut used = 0;
    while used < input.len() {
        match c {
            Chunk::Size(line) => {
                line.push(input[used]);
                used += 1;
                if line.ends_with(b"\r\n") {
                    let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
                    let hex = text.split(';').next().unwrap_or("").trim();
                    *c = match u64::from_str_radix(hex, 16) {
                        Ok(0) => Chunk::Trailer(Vec::new()),
                        Ok(n) => Chunk::Data(n + 2),
                        Err(_) => return (input.len(), true),
                    };
                } else if line.len() > 1024 {
                    return (input.len(), true);
                }
            }
            Chunk::Data(n) => {
                let take = (*n).min((input.len() - used) as u64) as usize;
                used += take;
                *n -= take as u64;
                if *n == 0 {
                    *c = Chunk::Size(Vec::new());
                }
            }
            Chunk::Trailer(line) => {
                line.push(input[used]);
                used += 1;
                if line.ends_with(b"\r\n") {
                    if line.len() == 2 {
                        return (used, true);
                    }
                    line.clear();
                } else if line.len() > MAX_HEAD {
                    return (input.len(), true);
                }
            }
        }
    }
    (used, false)
}

impl<T: AsyncRead + Unpin> AsyncRead for Watch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.at < self.out.len() {
                let n = (self.out.len() - self.at).min(buf.remaining());
                let at = self.at;
                buf.put_slice(&self.out[at..at + n]);
                self.at += n;
                if self.at == self.out.len() {
                    self.out.clear();
                    self.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(self.state, State::Off) {
                return Pin::new(&mut self.inner).poll_read(cx, buf);
            }
            let mut tmp = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let data = rb.filled().to_vec();
                    self.feed(&data);
                }
                other => return other,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watch<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], split: usize) -> Vec<u8> {
        let mut w = Watch::new(());
        for part in input.chunks(split.max(1)) {
            w.feed(part);
        }
        w.out
    }

    #[test]
    fn ambiguous_heads_are_marked_whatever_the_order_or_the_split() {
        for req in [
            &b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\r\n\r\n"[..],
            &b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"[..],
        ] {
            for split in [1, 3, 7, 1000] {
                let out = String::from_utf8(run(req, split)).expect("utf8");
                assert!(out.contains(&format!("{MARK}: 1\r\n\r\n0\r\n")), "{out}");
            }
        }
    }

    #[test]
    fn well_framed_pipelines_pass_unchanged_and_later_heads_are_watched() {
        let clean = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nContent-Length: 9\r\n0\r\nT: v\r\n\r\n\
GET /c HTTP/1.1\r\n\r\n";
        for split in [1, 2, 5, 4096] {
            assert_eq!(run(clean, split), clean.to_vec(), "split {split}");
        }
        // A body that looks like a head is a body; the next real head is still watched.
        let body = b"X: 1\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\n";
        let mut tricky =
            format!("POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        tricky.extend_from_slice(body);
        tricky.extend_from_slice(
            b"POST /b HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        let out = String::from_utf8(run(&tricky, 3)).expect("utf8");
        assert_eq!(out.matches(MARK).count(), 1, "{out}");
        assert!(out.contains(&format!(
            "/b HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n{MARK}"
        )));
    }
}
