//! Kafka framing: a 4-byte big-endian length, then that many bytes.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
    read_body(r, n as usize).await
}

/// The first allocation for a frame's body; it then grows with the bytes that arrive.
const FIRST_CHUNK: usize = 16 * 1024;

/// Read exactly `n` bytes, growing the buffer as they arrive (at most doubling): a
/// length prefix alone never makes us allocate, or zero, what it claims.
async fn read_body<R: AsyncRead + Unpin>(r: &mut R, n: usize) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::with_capacity(n.min(FIRST_CHUNK));
    while buf.len() < n {
        if buf.len() == buf.capacity() {
            buf.reserve((n - buf.len()).min(buf.len().max(FIRST_CHUNK)));
        }
        let want = (n - buf.len()) as u64;
        if (&mut *r).take(want).read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(buf.freeze())
}

/// Write one frame: the length and the body as one vectored write, without copying
/// the body (produce and fetch frames are up to megabytes), then flush.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    use bytes::Buf;
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
    // A TLS stream holds the last record until flushed; a TCP stream has nothing to do.
    w.flush().await
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

    #[tokio::test]
    async fn a_claimed_frame_that_never_arrives_fails_and_one_in_pieces_is_read_whole() {
        // 4 bytes claiming 512 KiB, then 10 bytes and the end: an error, not a hang.
        // (What such a peer costs in memory is measured against the real server:
        // attacks.rs, length_prefixes_alone_cost_little…)
        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(&(512 * 1024i32).to_be_bytes())
            .await
            .expect("write");
        client.write_all(&[1; 10]).await.expect("write");
        let read = tokio::spawn(async move { read_frame(&mut server, 1 << 20).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(client);
        assert!(matches!(read.await.expect("join"), Err(FrameError::Io(_))));
        // A frame that does arrive, in pieces, is read whole.
        let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut framed = (body.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&body);
        let mut r: &[u8] = &framed;
        assert_eq!(
            read_frame(&mut r, 1 << 20).await.ok().as_deref(),
            Some(&body[..])
        );
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
