//! Recorded media at rest: files in `data_dir/recordings/<interview>/<recording>`, each sealed with its own data
//! key (`vault`), one row per file. Only interviews whose candidate consented are recorded (`live::taping`
//! writes them as they happen). Files are read back by byte range for replay, deleted by the retention sweeper
//! when they expire and with their owner's account, and their keys can be moved to a new master key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::domain::{InterviewId, UserId};
use crate::metrics::Metrics;
use crate::store::{NewRecording, Outcome, RecordingRecord, Store, StoreError, now_ms};
use crate::vault::sealed::{SealedReader, SealedWriter};
use crate::vault::{Vault, VaultError, WrappedKey};

/// Expired recordings deleted per sweep query.
const SWEEP_BATCH: i64 = 100;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("recording file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the recording task failed: {0}")]
    Task(String),
}

/// Whose voice or picture a recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Candidate,
    Interviewer,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Interviewer => "interviewer",
        }
    }
}

pub struct Recordings {
    data_dir: PathBuf,
    vault: Vault,
    store: Store,
    metrics: Arc<Metrics>,
    retention_days: u32,
}

impl Recordings {
    pub fn new(
        data_dir: &Path,
        master_key: &SecretString,
        retired: Option<&SecretString>,
        retention_days: u32,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RecordingError> {
        let retired: Vec<SecretString> = retired
            .map(|keys| keys.expose_secret().split(',').filter(|k| !k.trim().is_empty()).map(|k| SecretString::from(k.trim().to_string())).collect())
            .unwrap_or_default();
        Ok(Self { data_dir: data_dir.to_path_buf(), vault: Vault::new(master_key, &retired)?, store, metrics, retention_days })
    }

    /// Starts a recording of `interview` (owned by `owner`): its row, and an empty sealed file.
    pub async fn start(
        &self,
        interview: InterviewId,
        owner: UserId,
        source: Source,
        media_type: &'static str,
        offset_ms: u64,
    ) -> Result<Tape, RecordingError> {
        let id = uuid::Uuid::new_v4().to_string();
        let relative = format!("recordings/{interview}/{id}");
        let path = self.data_dir.join(&relative);
        let (key, wrapped) = self.vault.new_data_key()?;
        let own = self.store.user(owner).await?.and_then(|u| u.recording_retention_days);
        let days = own.unwrap_or(i64::from(self.retention_days));
        let kind = if media_type.starts_with("video/") { "video" } else { "audio" };
        let file_path = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            if let Some(dir) = file_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::File::create(&file_path)
        })
        .await
        .map_err(|e| RecordingError::Task(e.to_string()))?
        .map_err(|source| RecordingError::Io { path: path.display().to_string(), source })?;
        self.store
            .insert_recording(NewRecording {
                id: &id,
                interview,
                source: source.as_str(),
                kind,
                media_type,
                path: &relative,
                data_key: &wrapped.sealed,
                master_key_id: &wrapped.master_key_id,
                offset_ms: i64::try_from(offset_ms).unwrap_or(i64::MAX),
                expires_at: now_ms() + days * DAY_MS,
            })
            .await?;
        self.metrics.recordings.with_label_values(&["started"]).inc();
        let writer = SealedWriter::new(file, key.cipher(), &id);
        Ok(Tape { id, path, writer: Some(writer), store: self.store.clone(), metrics: self.metrics.clone() })
    }

    /// Opens a recording for reading (blocking file access: call from a blocking task).
    pub fn open(&self, row: &RecordingRecord) -> Result<SealedReader<std::fs::File>, RecordingError> {
        let key = self.vault.unwrap(&WrappedKey { master_key_id: row.master_key_id.clone(), sealed: row.data_key.clone() })?;
        let path = self.data_dir.join(&row.path);
        let file = std::fs::File::open(&path).map_err(|source| RecordingError::Io { path: path.display().to_string(), source })?;
        Ok(SealedReader::open(file, key.cipher(), &row.id)?)
    }

    /// Deletes a recording's file and marks its row; `why` is `expired` or `erased` (metrics, audit).
    pub async fn delete(&self, row: &RecordingRecord, why: &'static str) -> Result<(), RecordingError> {
        let path = self.data_dir.join(&row.path);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RecordingError::Io { path: path.display().to_string(), source }),
        }
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::remove_dir(dir).await; // only once it is empty
        }
        self.store.mark_recording_deleted(&row.id, now_ms()).await?;
        self.metrics.recordings.with_label_values(&[why]).inc();
        Ok(())
    }

    /// Deletes every recording past its expiry at `now_ms`; returns how many.
    pub async fn sweep(&self, now_ms: i64) -> Result<usize, RecordingError> {
        let mut deleted = 0;
        loop {
            let expired = self.store.expired_recordings(now_ms, SWEEP_BATCH).await?;
            if expired.is_empty() {
                return Ok(deleted);
            }
            for row in &expired {
                self.delete(row, "expired").await?;
                let detail = format!("interview {}, {} bytes", row.interview_id, row.bytes);
                self.store.audit(None, "recording.expired", Some(&row.id), None, Outcome::Success, Some(&detail)).await?;
                deleted += 1;
            }
        }
    }

    /// Sweeps every `every` until `stop`.
    pub async fn sweep_every(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        loop {
            match self.sweep(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired recordings deleted"),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; next try later"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Deletes the files of every recording of a user's interviews (before their rows go with the account).
    pub async fn erase_user(&self, user: UserId) -> Result<usize, RecordingError> {
        let rows = self.store.recordings_of_user(user).await?;
        for row in &rows {
            self.delete(row, "erased").await?;
        }
        Ok(rows.len())
    }

    /// Moves every data key to the current master key; returns how many were moved.
    pub async fn rewrap(&self) -> Result<usize, RecordingError> {
        let rows = self.store.recordings_wrapped_by_other_keys(self.vault.master_key_id()).await?;
        let mut moved = 0;
        for row in rows {
            let wrapped = WrappedKey { master_key_id: row.master_key_id.clone(), sealed: row.data_key.clone() };
            if let Some(new) = self.vault.rewrap(&wrapped)? {
                self.store.set_recording_key(&row.id, &new.sealed, &new.master_key_id).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }
}

/// A recording being written: media bytes go in as they come, sealed a chunk at a time off the async runtime.
pub struct Tape {
    pub id: String,
    path: PathBuf,
    writer: Option<SealedWriter<std::fs::File>>,
    store: Store,
    metrics: Arc<Metrics>,
}

impl Tape {
    /// Appends media and seals it to disk, so a crash after this loses none of it; the row is brought up to
    /// date (`duration_ms` so far).
    pub async fn append(&mut self, data: Vec<u8>, duration_ms: u64) -> Result<(), RecordingError> {
        let bytes = data.len() as u64;
        let len = self.with_writer(move |w| {
            w.write(&data)?;
            w.flush_chunk()
        })
        .await?;
        self.metrics.recording_bytes.inc_by(bytes);
        self.store.update_recording(&self.id, len, duration_ms, false).await?;
        Ok(())
    }

    /// Seals the final chunk and marks the row finished.
    pub async fn finish(mut self, duration_ms: u64) -> Result<(), RecordingError> {
        let Some(writer) = self.writer.take() else { return Ok(()) };
        let len = writer.len();
        let path = self.path.display().to_string();
        tokio::task::spawn_blocking(move || writer.finish().and_then(|file| file.sync_all()))
            .await
            .map_err(|e| RecordingError::Task(e.to_string()))?
            .map_err(|source| RecordingError::Io { path, source })?;
        self.store.update_recording(&self.id, len, duration_ms, true).await?;
        self.metrics.recordings.with_label_values(&["finished"]).inc();
        Ok(())
    }

    async fn with_writer(
        &mut self,
        work: impl FnOnce(&mut SealedWriter<std::fs::File>) -> std::io::Result<()> + Send + 'static,
    ) -> Result<u64, RecordingError> {
        let mut writer = self.writer.take().ok_or_else(|| RecordingError::Task("the recording has failed before".into()))?;
        let path = self.path.display().to_string();
        let (writer, result) = tokio::task::spawn_blocking(move || {
            let result = work(&mut writer);
            (writer, result)
        })
        .await
        .map_err(|e| RecordingError::Task(e.to_string()))?;
        result.map_err(|source| RecordingError::Io { path, source })?;
        let len = writer.len();
        self.writer = Some(writer);
        Ok(len)
    }
}
