//! The `pdf` job: render an attendee's ticket once and record it.

use std::{path::Path, time::Instant};

use pique_store::{PgPool, fulfilment};
use uuid::Uuid;

use crate::{JobError, metrics, pdf};

/// A new download token: 32 random bytes, hex (256 bits, not guessable).
pub fn download_token() -> String {
    crate::random_token()
}

/// Where an attendee's ticket lives under `media_dir`.
pub fn ticket_path(media_dir: &Path, attendee_uuid: Uuid) -> std::path::PathBuf {
    media_dir
        .join("tickets")
        .join(format!("{attendee_uuid}.pdf"))
}

/// Makes sure the attendee's ticket PDF exists and is recorded; returns its record.
///
/// Keyed by attendee: if the row and the file exist this is a no-op. Two workers racing on
/// the same attendee both render, each writes a temporary file and renames it over the same
/// path (atomic on one file system), and the first `INSERT` wins the row, so the outcome is
/// one file and one row whatever the interleaving.
pub async fn ensure_ticket_pdf(
    pool: &PgPool,
    media_dir: &Path,
    attendee_uuid: Uuid,
) -> Result<fulfilment::TicketPdf, JobError> {
    let existing = fulfilment::ticket_pdf(pool, attendee_uuid).await?;
    if let Some(row) = &existing
        && tokio::fs::try_exists(&row.path).await.unwrap_or(false)
    {
        return Ok(row.clone());
    }
    let ticket = fulfilment::ticket_context(pool, attendee_uuid)
        .await?
        .ok_or_else(|| JobError::Invalid(format!("attendee {attendee_uuid} does not exist")))?;

    let started = Instant::now();
    // Rendering is CPU work (QR, compression): keep it off the async threads.
    let bytes = tokio::task::spawn_blocking(move || pdf::render_ticket(&ticket))
        .await
        .map_err(|e| JobError::Pdf(format!("render task: {e}")))??;
    metrics::pdf_generated(started.elapsed().as_secs_f64());

    // A lost file with a surviving row is rewritten at the recorded path, keeping its link.
    let path = match &existing {
        Some(row) => std::path::PathBuf::from(&row.path),
        None => ticket_path(media_dir, attendee_uuid),
    };
    write_atomically(&path, &bytes).await?;
    let size = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    match existing {
        Some(row) => Ok(row),
        None => Ok(fulfilment::record_ticket_pdf(
            pool,
            attendee_uuid,
            &path.to_string_lossy(),
            &download_token(),
            size,
        )
        .await?),
    }
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it into place, so a reader
/// (the download route, the email job) never sees a half-written file.
async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), JobError> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension(format!("pdf.tmp-{}", Uuid::new_v4().simple()));
    tokio::fs::write(&tmp, bytes).await?;
    if let Err(e) = tokio::fs::rename(&tmp, path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e.into());
    }
    Ok(())
}
