//! Kafka framing: a 4-byte big-endian length, then that many bytes.
//!
//! Connections read through [`Frames`] (tokio-util's `FramedRead` with this module's
//! codec): reads are buffered, so one system call picks up every small frame that has
//! arrived, and waiting for the next frame is cancellation-safe — the connection loop
//! can `select!` between it and its revocation check without a task in between and
//! without ever losing part of a frame. [`read_frame`] is for one-off exchanges.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Decoder, FramedRead};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// A negative length or one over the configured maximum.
    #[error("frame length {0} is outside 0..={1}")]
    BadLength(i64, usize),
    /// The connection broke mid-frame.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Read one frame of at most `max` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Bytes, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > max {
        return Err(FrameError::BadLength(i64::from(n), max));
    }
    let mut buf = BytesMut::zeroed(n as usize);
    r.read_exact(&mut buf).await?;
    Ok(buf.freeze())
}

/// Splits a byte stream into frames of at most `max` bytes (the length prefix removed).
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A codec refusing frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let n = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(n)
            .ok()
            .filter(|&l| l <= self.max)
            .ok_or(FrameError::BadLength(i64::from(n), self.max))?;
        if src.len() < 4 + len {
            // Room for the whole frame at once: one allocation, no regrowth.
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        let frame = src.split_to(len).freeze();
        if src.is_empty() && src.capacity() > READ_BUFFER {
            // Not keep a large frame's allocation for the life of an idle connection:
            // the frame owns it now and frees it when it has been forwarded.
            *src = BytesMut::with_capacity(READ_BUFFER);
        }
        Ok(Some(frame))
    }
}

/// A connection's read buffer between frames: small frames are read many at a time;
/// a large one gets a buffer of its own size.
const READ_BUFFER: usize = 16 * 1024;

/// A connection's read half, split into frames.
pub type Frames<R> = FramedRead<R, FrameCodec>;

/// Frames read from `r`, refusing any longer than `max` bytes.
pub fn frames<R: AsyncRead>(r: R, max: usize) -> Frames<R> {
    FramedRead::with_capacity(r, FrameCodec::new(max), READ_BUFFER)
}

/// The next frame; [`FrameError::Closed`] when the peer closed between frames (a close
/// mid-frame is an I/O error). Cancellation-safe.
pub async fn next_frame<R: AsyncRead + Unpin>(f: &mut Frames<R>) -> Result<Bytes, FrameError> {
    f.next().await.unwrap_or(Err(FrameError::Closed))
}

/// Write one frame: the length and the body as one vectored write, without copying
/// the body (produce and fetch frames are up to megabytes).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let len = i32::try_from(body.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let prefix = len.to_be_bytes();
    let mut chain = Buf::chain(&prefix[..], body);
    while chain.has_remaining() {
        let mut slices = [std::io::IoSlice::new(&[]); 2];
        let n = chain.chunks_vectored(&mut slices);
        let written = w.write_vectored(&slices[..n]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        chain.advance(written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn written_frames_read_back() {
        let mut out = Vec::new();
        write_frame(&mut out, b"hello").await.expect("write");
        assert_eq!(out, [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        let mut r: &[u8] = &out;
        assert_eq!(
            read_frame(&mut r, 10).await.ok().as_deref(),
            Some(&b"hello"[..])
        );
    }

    /// The same bytes as `read_frame` reads them, through the buffered codec, arriving
    /// in pieces of every size.
    #[tokio::test]
    async fn framed_reads_split_and_join_frames() {
        let mut wire = Vec::new();
        for body in [&b"a"[..], b"", b"hello world", &[7u8; 3000]] {
            write_frame(&mut wire, body).await.expect("write");
        }
        for piece in [1, 3, 4, 5, 17, 4096] {
            let chunks: Vec<std::io::Result<Bytes>> = wire
                .chunks(piece)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let r = tokio_util::io::StreamReader::new(futures_util::stream::iter(chunks));
            let mut f = frames(r, 4096);
            assert_eq!(next_frame(&mut f).await.expect("1").as_ref(), b"a");
            assert_eq!(next_frame(&mut f).await.expect("2").as_ref(), b"");
            assert_eq!(
                next_frame(&mut f).await.expect("3").as_ref(),
                b"hello world"
            );
            assert_eq!(
                next_frame(&mut f).await.expect("4").as_ref(),
                &[7u8; 3000][..]
            );
            assert!(matches!(next_frame(&mut f).await, Err(FrameError::Closed)));
        }
    }

    #[test]
    fn a_large_frame_does_not_stay_in_the_read_buffer() {
        let mut codec = FrameCodec::new(1 << 20);
        let mut src = BytesMut::new();
        src.extend_from_slice(&(200_000i32).to_be_bytes());
        assert!(codec.decode(&mut src).expect("header").is_none());
        assert!(
            src.capacity() >= 200_004,
            "room for the whole frame at once"
        );
        src.resize(200_004, 1);
        let frame = codec.decode(&mut src).expect("frame").expect("whole");
        assert_eq!(frame.len(), 200_000);
        assert!(src.is_empty() && src.capacity() <= READ_BUFFER);
    }

    #[tokio::test]
    async fn framed_reads_refuse_bad_lengths_and_torn_frames() {
        for (wire, want) in [
            (&[0xffu8, 0xff, 0xff, 0xff][..], "-1"),
            (&[0, 0, 1, 0][..], "256"),
        ] {
            let mut f = frames(wire, 10);
            let e = next_frame(&mut f).await.expect_err("refused");
            assert!(matches!(e, FrameError::BadLength(_, 10)), "{e}");
            assert!(e.to_string().contains(want), "{e}");
        }
        let mut torn = frames(&[0u8, 0, 0, 5, 1][..], 10);
        assert!(matches!(
            next_frame(&mut torn).await,
            Err(FrameError::Io(_))
        ));
        let mut empty = frames(&[][..], 10);
        assert!(matches!(
            next_frame(&mut empty).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn lengths_are_checked() {
        let mut ok: &[u8] = &[0, 0, 0, 2, 7, 8];
        assert_eq!(
            read_frame(&mut ok, 10).await.ok().as_deref(),
            Some(&[7u8, 8][..])
        );
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut neg, 10).await,
            Err(FrameError::BadLength(-1, 10))
        ));
        let mut huge: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            read_frame(&mut huge, 10).await,
            Err(FrameError::BadLength(256, 10))
        ));
        let mut short: &[u8] = &[0, 0, 0, 5, 1];
        assert!(matches!(
            read_frame(&mut short, 10).await,
            Err(FrameError::Io(_))
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut empty, 10).await,
            Err(FrameError::Closed)
        ));
    }
}
