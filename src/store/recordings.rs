//! Rows of recordings: written when a recording starts, completed when it finishes, marked when its file is
//! deleted (by retention or erasure). The files themselves are the `recordings` module's.

use crate::domain::{InterviewId, UserId};

use super::{Store, StoreResult, now_ms};

/// A recording row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordingRecord {
    pub id: String,
    pub interview_id: String,
    /// `candidate` or `interviewer`.
    pub source: String,
    /// `audio` or `video`.
    pub kind: String,
    pub media_type: String,
    /// Relative to the data directory.
    pub path: String,
    pub data_key: String,
    pub master_key_id: String,
    /// Plaintext bytes.
    pub bytes: i64,
    /// Where the recording starts on the session's clock (the transcript's word times use the same clock).
    pub offset_ms: i64,
    pub duration_ms: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// `local` (under the data directory) or `object` (in the object store, under `path`).
    pub location: String,
}

/// A recording about to be written.
pub struct NewRecording<'a> {
    pub id: &'a str,
    pub interview: InterviewId,
    pub source: &'a str,
    pub kind: &'a str,
    pub media_type: &'a str,
    pub path: &'a str,
    pub data_key: &'a str,
    pub master_key_id: &'a str,
    pub offset_ms: i64,
    pub expires_at: i64,
}

/// `SELECT` of `RecordingRecord`, as a macro so queries stay `&'static str`.
macro_rules! select_recording {
    ($($rest:literal)+) => {
        concat!(
            "SELECT id, interview_id, source, kind, media_type, path, data_key, master_key_id, bytes, offset_ms, \
             duration_ms, created_at, expires_at, finished_at, deleted_at, location FROM recordings ",
            $($rest),+
        )
    };
}

impl Store {
    pub async fn insert_recording(&self, new: NewRecording<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO recordings (id, interview_id, source, kind, media_type, path, nonce, data_key, master_key_id,
                                     bytes, offset_ms, duration_ms, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'chunk-index', $7, $8, 0, $9, 0, $10, $11)",
        )
        .bind(new.id)
        .bind(new.interview.to_string())
        .bind(new.source)
        .bind(new.kind)
        .bind(new.media_type)
        .bind(new.path)
        .bind(new.data_key)
        .bind(new.master_key_id)
        .bind(new.offset_ms)
        .bind(now_ms())
        .bind(new.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Brings a recording's size and length up to date; `finished` when its writer closed it.
    pub async fn update_recording(&self, id: &str, bytes: u64, duration_ms: u64, finished: bool) -> StoreResult<()> {
        sqlx::query(
            "UPDATE recordings SET bytes = $1, duration_ms = $2, finished_at = COALESCE(finished_at, $3) WHERE id = $4",
        )
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
        .bind(finished.then(now_ms))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An interview's recordings whose files still exist.
    pub async fn recordings(&self, interview: InterviewId) -> StoreResult<Vec<RecordingRecord>> {
        Ok(sqlx::query_as(select_recording!("WHERE interview_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"))
        .bind(interview.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Recordings past their expiry whose files still exist, oldest first.
    pub async fn expired_recordings(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<RecordingRecord>> {
        Ok(sqlx::query_as(select_recording!("WHERE expires_at <= $1 AND deleted_at IS NULL ORDER BY expires_at LIMIT $2"))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every recording of a user's interviews whose file still exists (for erasure).
    pub async fn recordings_of_user(&self, user: UserId) -> StoreResult<Vec<RecordingRecord>> {
        Ok(sqlx::query_as(select_recording!("WHERE deleted_at IS NULL
             AND interview_id IN (SELECT id FROM interviews WHERE user_id = $1) ORDER BY created_at"))
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Recordings in a data directory that were never finished (the server stopped without sealing their end).
    pub async fn unfinished_local_recordings(&self) -> StoreResult<Vec<RecordingRecord>> {
        Ok(sqlx::query_as(select_recording!("WHERE finished_at IS NULL AND deleted_at IS NULL AND location = 'local'
             ORDER BY created_at"))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The recording now lives in the object store.
    pub async fn mark_recording_moved(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE recordings SET location = 'object' WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// The file is gone; the row stays as a record that it existed.
    pub async fn mark_recording_deleted(&self, id: &str, at_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE recordings SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every live recording row, for re-wrapping data keys under a new master key.
    pub async fn recordings_wrapped_by_other_keys(&self, master_key_id: &str) -> StoreResult<Vec<RecordingRecord>> {
        Ok(sqlx::query_as(select_recording!("WHERE deleted_at IS NULL AND master_key_id <> $1"))
            .bind(master_key_id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn set_recording_key(&self, id: &str, data_key: &str, master_key_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE recordings SET data_key = $1, master_key_id = $2 WHERE id = $3")
            .bind(data_key)
            .bind(master_key_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_recording_retention_days(&self, user: UserId, days: Option<i64>) -> StoreResult<()> {
        sqlx::query("UPDATE users SET recording_retention_days = $1 WHERE id = $2")
            .bind(days)
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
