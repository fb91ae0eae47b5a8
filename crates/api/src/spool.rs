//! Decouples a producer of bytes (a database export) from a possibly slow HTTP client.
//!
//! [`spooled`] writes the producer's chunks to an unlinked temporary file as fast as the
//! producer delivers them, while the returned stream reads the file back at the client's
//! pace. The producer never waits for the client: an export's pooled PostgreSQL connection
//! is released as soon as the query has delivered its rows, however slowly the client
//! downloads, and memory stays flat (at most one chunk in flight on each side).

use std::io::SeekFrom;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
    sync::watch,
};

/// Bytes read back from the spool per body chunk.
const READ_CHUNK: usize = 64 * 1024;

/// How far the writer has got.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Bytes written and flushed to the file.
    written: u64,
    /// `Some` once the producer has ended: `Ok` complete, `Err` failed (the client must see
    /// a truncated transfer, not a file that looks complete).
    finished: Option<Result<(), String>>,
}

/// Spools `source` to a temporary file and returns a stream of its bytes, available as soon
/// as they are written. If the client goes away, the writer stops at its next chunk.
pub fn spooled(
    source: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> std::io::Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static> {
    let named = tempfile::NamedTempFile::new()?;
    let reader = tokio::fs::File::from_std(named.reopen()?);
    // Unlink the path now: both descriptors stay valid, and the disk space is freed when the
    // last of them closes, whatever happens to this process's tasks.
    let (writer, path) = named.into_parts();
    drop(path);
    let mut writer = tokio::fs::File::from_std(writer);
    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    tokio::spawn(async move {
        let mut source = std::pin::pin!(source);
        let mut written = 0u64;
        let outcome = loop {
            let Some(chunk) = source.next().await else {
                break Ok(());
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => break Err(e.to_string()),
            };
            if let Err(e) = async {
                writer.write_all(&chunk).await?;
                writer.flush().await
            }
            .await
            {
                tracing::error!(error = %e, "export spool write failed");
                break Err(e.to_string());
            }
            written += chunk.len() as u64;
            if progress_tx
                .send(Progress {
                    written,
                    finished: None,
                })
                .is_err()
            {
                // The client is gone: stop, which drops the source and its connection.
                return;
            }
        };
        let _ = progress_tx.send(Progress {
            written,
            finished: Some(outcome),
        });
    });
    Ok(read_back(reader, progress_rx))
}

/// The spool's bytes in order, waiting for the writer when the reader catches up.
fn read_back(
    reader: tokio::fs::File,
    progress: watch::Receiver<Progress>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some((reader, progress, 0u64)), |state| async move {
        let (mut reader, mut progress, position) = state?;
        loop {
            let now = progress.borrow_and_update().clone();
            if position < now.written {
                let want = (now.written - position).min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                let read = async {
                    reader.seek(SeekFrom::Start(position)).await?;
                    reader.read_exact(&mut buf).await
                }
                .await;
                return Some(match read {
                    Ok(_) => {
                        let next = position + want as u64;
                        (Ok(Bytes::from(buf)), Some((reader, progress, next)))
                    }
                    Err(e) => (Err(e), None),
                });
            }
            match now.finished {
                Some(Ok(())) => return None,
                Some(Err(e)) => return Some((Err(std::io::Error::other(e)), None)),
                None => {
                    if progress.changed().await.is_err() {
                        // The writer vanished without finishing (it panicked).
                        let gone = std::io::Error::other("export spool writer ended early");
                        return Some((Err(gone), None));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spooled_bytes_come_back_whole_and_in_order() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..500u32)
            .map(|i| Ok(Bytes::from(format!("line {i}\n").repeat(50))))
            .collect();
        let expected: Vec<u8> = (0..500u32)
            .flat_map(|i| format!("line {i}\n").repeat(50).into_bytes())
            .collect();
        let out = spooled(futures::stream::iter(chunks)).expect("spool");
        let got: Vec<u8> = out.map(|c| c.expect("chunk").to_vec()).concat().await;
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
    }

    #[tokio::test]
    async fn the_writer_does_not_wait_for_the_reader() {
        // The source completes (and so would release its connection) before anyone reads.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let source = futures::stream::iter(
            (0..100).map(|_| Ok(Bytes::from(vec![b'x'; 64 * 1024]))),
        )
        .chain(futures::stream::once(async move {
            let _ = done_tx.send(());
            Ok(Bytes::from_static(b"end"))
        }));
        let out = spooled(source).expect("spool");
        tokio::time::timeout(std::time::Duration::from_secs(10), done_rx)
            .await
            .expect("the source is drained without a reader")
            .expect("sent");
        let total: usize = out
            .map(|c| c.expect("chunk").len())
            .fold(0, |a, n| async move { a + n })
            .await;
        assert_eq!(total, 100 * 64 * 1024 + 3);
    }

    #[tokio::test]
    async fn a_failing_source_ends_the_body_with_an_error() {
        let source = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"header\n")),
            Err(std::io::Error::other("database went away")),
        ]);
        let out: Vec<_> = spooled(source).expect("spool").collect().await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().expect("first chunk").as_ref(), b"header\n");
        assert!(out[1].is_err(), "truncated, not complete");
    }
}
