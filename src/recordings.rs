//! Recorded media at rest: files in `data_dir/recordings/<interview>/<recording>`, each sealed with its own data
//! key (`vault`), one row per file. Only interviews whose candidate consented are recorded (`live::taping`
//! writes them as they happen). With an object store configured (any S3-compatible server), a finished
//! recording moves there, with its chunk index beside it, so replay reads only the chunks a range needs. Files
//! are read back by byte range for replay, deleted by the retention sweeper when they expire and with their
//! owner's account, and their keys can be moved to a new master key.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use tokio_util::sync::CancellationToken;

use crate::domain::{InterviewId, UserId};
use crate::metrics::Metrics;
use crate::store::{NewRecording, Outcome, RecordingRecord, Store, StoreError, now_ms};
use crate::vault::sealed::{ChunkIndex, SealedReader, SealedWriter};
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
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
}

/// A recording opened for reading, wherever it lies.
pub type Media = SealedReader<Box<dyn ReadSeek>>;

pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Where finished recordings go: an object store and the key prefix of Candor's objects in it.
#[derive(Clone)]
pub struct Objects {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
}

impl Objects {
    fn path(&self, relative: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{relative}", self.prefix.trim_matches('/')))
    }

    fn index_path(&self, relative: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{relative}.index", self.prefix.trim_matches('/')))
    }
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
    vault: Arc<Vault>,
    store: Store,
    metrics: Arc<Metrics>,
    retention_days: u32,
    objects: Option<Objects>,
}

impl Recordings {
    pub fn new(
        data_dir: &Path,
        vault: Arc<Vault>,
        retention_days: u32,
        objects: Option<Objects>,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self { data_dir: data_dir.to_path_buf(), vault, store, metrics, retention_days, objects }
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
        let objects = self.objects.clone().map(|o| (o, relative));
        Ok(Tape { id, path, writer: Some(writer), store: self.store.clone(), metrics: self.metrics.clone(), objects })
    }

    /// Opens a recording for reading. Blocking (file access, or object requests on the runtime): call it from
    /// a blocking task.
    pub fn open(&self, row: &RecordingRecord) -> Result<Media, RecordingError> {
        let key = self.vault.unwrap(&WrappedKey { master_key_id: row.master_key_id.clone(), sealed: row.data_key.clone() })?.cipher();
        match (&self.objects, row.location.as_str()) {
            (Some(objects), "object") => {
                let runtime = tokio::runtime::Handle::try_current().map_err(|e| RecordingError::Task(e.to_string()))?;
                let index = runtime.block_on(async { objects.store.get(&objects.index_path(&row.path)).await?.bytes().await })?;
                let index = ChunkIndex::from_bytes(&index)?;
                let object = ObjectFile { objects: objects.store.clone(), path: objects.path(&row.path), at: 0, runtime };
                Ok(SealedReader::with_index(Box::new(object), key, &row.id, index))
            }
            _ => {
                let path = self.data_dir.join(&row.path);
                let file = std::fs::File::open(&path).map_err(|source| RecordingError::Io { path: path.display().to_string(), source })?;
                Ok(SealedReader::open(Box::new(file) as Box<dyn ReadSeek>, key, &row.id)?)
            }
        }
    }

    /// Deletes a recording's file and marks its row; `why` is `expired` or `erased` (metrics, audit).
    pub async fn delete(&self, row: &RecordingRecord, why: &'static str) -> Result<(), RecordingError> {
        if let (Some(objects), "object") = (&self.objects, row.location.as_str()) {
            for path in [objects.path(&row.path), objects.index_path(&row.path)] {
                match objects.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
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

    /// Recordings a crash left unfinished in this data directory, at startup (before any session records): each
    /// is marked finished as far as its last sealed chunk (everything sealed before the crash replays) and moved
    /// to the object store when one is configured. A row whose file is not here is another node's. Returns how
    /// many were recovered.
    pub async fn recover(&self) -> Result<usize, RecordingError> {
        let mut recovered = 0;
        for row in self.store.unfinished_local_recordings().await? {
            let path = self.data_dir.join(&row.path);
            let io = |source| RecordingError::Io { path: path.display().to_string(), source };
            let sealed = match tokio::fs::read(&path).await {
                Ok(sealed) => sealed,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            let plain = ChunkIndex::scan(&mut std::io::Cursor::new(&sealed))?.len();
            let duration_ms = u64::try_from(row.duration_ms).unwrap_or(0);
            self.store.update_recording(&row.id, plain, duration_ms, true).await?;
            self.metrics.recordings.with_label_values(&["recovered"]).inc();
            if let Some(objects) = &self.objects {
                move_to(objects, &self.store, &row.id, &path, &row.path).await?;
            }
            tracing::info!(recording = row.id, bytes = plain, "unfinished recording recovered after a restart");
            recovered += 1;
        }
        Ok(recovered)
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

/// A sealed object in an object store read like a file: each read is one range request (the chunk index lies
/// beside it, so a chunk is one read). Used from blocking threads only.
struct ObjectFile {
    objects: Arc<dyn ObjectStore>,
    path: ObjectPath,
    at: u64,
    runtime: tokio::runtime::Handle,
}

impl Read for ObjectFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let range = self.at..self.at + buf.len() as u64;
        let bytes = self.runtime.block_on(self.objects.get_range(&self.path, range)).map_err(std::io::Error::other)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        self.at += bytes.len() as u64;
        Ok(bytes.len())
    }
}

impl Seek for ObjectFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match to {
            SeekFrom::Start(at) => self.at = at,
            SeekFrom::Current(delta) => self.at = self.at.saturating_add_signed(delta),
            // Readers with an index never seek from the end.
            SeekFrom::End(_) => return Err(std::io::Error::other("objects are read with their chunk index")),
        }
        Ok(self.at)
    }
}

/// Uploads a recording's sealed file (at `path`, `relative` to the data directory) and its chunk index, marks
/// the row, then removes the local copy.
async fn move_to(objects: &Objects, store: &Store, id: &str, path: &Path, relative: &str) -> Result<(), RecordingError> {
    let io = |source| RecordingError::Io { path: path.display().to_string(), source };
    let sealed = tokio::fs::read(path).await.map_err(io)?;
    let index = ChunkIndex::scan(&mut std::io::Cursor::new(&sealed))?;
    objects.store.put(&objects.path(relative), PutPayload::from(sealed)).await?;
    objects.store.put(&objects.index_path(relative), PutPayload::from(index.to_bytes())).await?;
    store.mark_recording_moved(id).await?;
    tokio::fs::remove_file(path).await.map_err(io)?;
    if let Some(dir) = path.parent() {
        let _ = tokio::fs::remove_dir(dir).await;
    }
    Ok(())
}

/// A recording being written: media bytes go in as they come, sealed a chunk at a time off the async runtime.
pub struct Tape {
    pub id: String,
    path: PathBuf,
    writer: Option<SealedWriter<std::fs::File>>,
    store: Store,
    metrics: Arc<Metrics>,
    /// The object store it moves to when finished, and its path relative to the data directory.
    objects: Option<(Objects, String)>,
}

impl Tape {
    /// Appends media and seals it to disk, so a crash after this loses none of it; the row is brought up to
    /// date when the database answers (`duration_ms` so far).
    pub async fn append(&mut self, data: Vec<u8>, duration_ms: u64) -> Result<(), RecordingError> {
        let bytes = data.len() as u64;
        let len = self.with_writer(move |w| {
            w.write(&data)?;
            w.flush_chunk()
        })
        .await?;
        self.metrics.recording_bytes.inc_by(bytes);
        // The media is safe on disk; the row's running size is a courtesy that a database outage must not stop
        // the recording for (`finish` writes the final one).
        if let Err(e) = self.store.update_recording(&self.id, len, duration_ms, false).await {
            tracing::warn!(recording = self.id, error = %e, "recording size not updated");
        }
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
        if let Some((objects, relative)) = self.objects.take()
            && let Err(e) = move_to(&objects, &self.store, &self.id, &self.path, &relative).await
        {
            // It stays readable where it is; the next finished recording tries again for itself.
            tracing::warn!(recording = self.id, error = %e, "recording kept on local disk: the object store refused it");
        }
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
