//! The frames between a pool and its sandbox children, over the child's
//! stdin (requests) and its original stdout (replies).
//!
//! A frame is two big-endian `u32` lengths, a JSON header and a body of
//! raw bytes (a payload or a result): a payload is never re-encoded.

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::payload::PayloadFormat;

/// The largest header or body a frame may carry: far above any payload or
/// result the backends accept, low enough that a corrupt length is caught.
const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// One attempt, sent to a child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) max_retries: u32,
    /// When the job was enqueued, in milliseconds since the Unix epoch.
    pub(crate) enqueued_ms: u64,
    pub(crate) format: PayloadFormat,
    /// The attempt's CPU time, in whole seconds, when limited.
    pub(crate) cpu_secs: Option<u64>,
    /// The job's place in its workflow or batch, with its dependencies'
    /// results ([`crate::JobContext::dependency`]).
    #[serde(default)]
    pub(crate) flow: Option<crate::queue::FlowPlace>,
}

/// What a child says.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Reply {
    /// Limits applied, ready for requests.
    Ready,
    /// The child could not set itself up (a limit was refused).
    Refused { error: String },
    /// The running job's progress ([`crate::JobContext::progress`]); the
    /// attempt goes on.
    Progress { fraction: f32, note: String },
    /// The attempt succeeded; the body is the result, when `has_result`.
    Succeeded { has_result: bool },
    /// The attempt failed.
    Failed {
        error: String,
        retryable: bool,
        /// A snooze's delay in milliseconds ([`crate::JobError::retry_in`]).
        snooze_ms: Option<u64>,
        holds_group: bool,
    },
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("the channel closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is over the limit")]
    TooLarge(u32),
    #[error("a malformed header: {0}")]
    Header(#[from] serde_json::Error),
}

fn encode<H: Serialize>(header: &H, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let h = serde_json::to_vec(header)?;
    let mut out = Vec::with_capacity(8 + h.len() + body.len());
    out.extend_from_slice(&length(h.len())?.to_be_bytes());
    out.extend_from_slice(&length(body.len())?.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(out)
}

fn length(n: usize) -> Result<u32, WireError> {
    match u32::try_from(n) {
        Ok(n) if n <= MAX_FRAME => Ok(n),
        _ => Err(WireError::TooLarge(u32::MAX)),
    }
}

fn lengths(prefix: [u8; 8]) -> Result<(usize, usize), WireError> {
    let [a, b, c, d, e, f, g, h] = prefix;
    let (head, body) = (u32::from_be_bytes([a, b, c, d]), u32::from_be_bytes([e, f, g, h]));
    for n in [head, body] {
        if n > MAX_FRAME {
            return Err(WireError::TooLarge(n));
        }
    }
    Ok((head as usize, body as usize))
}

/// Writes one frame (the child's side).
pub(crate) fn write_sync<H: Serialize>(w: &mut impl Write, header: &H, body: &[u8]) -> Result<(), WireError> {
    w.write_all(&encode(header, body)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame (the child's side); [`WireError::Closed`] at the end
/// of the stream between frames.
pub(crate) fn read_sync<H: DeserializeOwned>(r: &mut impl Read) -> Result<(H, Vec<u8>), WireError> {
    let mut prefix = [0u8; 8];
    match r.read_exact(&mut prefix) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        other => other?,
    }
    let (head, body) = lengths(prefix)?;
    let mut buf = vec![0u8; head + body];
    r.read_exact(&mut buf)?;
    let body_bytes = buf.split_off(head);
    Ok((serde_json::from_slice(&buf)?, body_bytes))
}

/// Writes one frame (the pool's side).
pub(crate) async fn write<H: Serialize>(
    w: &mut (impl AsyncWrite + Unpin),
    header: &H,
    body: &[u8],
) -> Result<(), WireError> {
    w.write_all(&encode(header, body)?).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame (the pool's side); [`WireError::Closed`] at the end of
/// the stream between frames.
pub(crate) async fn read<H: DeserializeOwned>(r: &mut (impl AsyncRead + Unpin)) -> Result<(H, Vec<u8>), WireError> {
    let mut prefix = [0u8; 8];
    match r.read_exact(&mut prefix).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        other => other?,
    };
    let (head, body) = lengths(prefix)?;
    let mut buf = vec![0u8; head + body];
    r.read_exact(&mut buf).await?;
    let body_bytes = buf.split_off(head);
    Ok((serde_json::from_slice(&buf)?, body_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_as_written() {
        let mut buf = Vec::new();
        let reply = Reply::Failed { error: "no".into(), retryable: true, snooze_ms: Some(5), holds_group: false };
        write_sync(&mut buf, &reply, b"body").unwrap();
        let (back, body): (Reply, _) = read_sync(&mut buf.as_slice()).unwrap();
        assert_eq!(back, reply);
        assert_eq!(body, b"body");
    }

    #[test]
    fn the_end_between_frames_is_closed_and_a_huge_length_is_refused() {
        assert!(matches!(read_sync::<Reply>(&mut [].as_slice()), Err(WireError::Closed)));
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(read_sync::<Reply>(&mut huge.as_slice()), Err(WireError::TooLarge(_))));
    }
}
