//! `Recorder`: a session's storage writer. Turns, per-second samples, rounds, questions and scores are queued
//! here and written in order by one task, so storage never sits on the RTP or inference path. `flush` waits
//! until everything queued before it is written: the conversation flushes before the report is built and the
//! session's end is reported, so nothing said is lost (also at shutdown, which ends sessions before the store
//! closes).
//!
//! Queue policy (`CAPACITY`): the conversation's writes wait for room; per-second samples from the media tasks
//! never wait: when the queue is full the sample is dropped and counted (`candor_storage_dropped_total`).
//!
//! A write that fails because the database is unreachable (restarting, a network cut) is retried with backoff
//! for up to `RETRY_FOR`, the queue holding what comes meanwhile; a retry that finds the row already there (the
//! first try committed before the connection broke) counts as written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::domain::{InterviewId, QuestionSource, SampleKind, Speaker};
use crate::metrics::Metrics;
use crate::store::{NewQuestion, NewScore, NewTurn, Store};

/// Writes waiting for the database: about eight minutes of samples at two a second.
const CAPACITY: usize = 1024;
/// How long a write is retried while the database is unreachable, and the backoff between tries.
const RETRY_FOR: Duration = Duration::from_secs(120);
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// A turn to store, owned.
#[derive(Debug, Clone)]
pub struct Turn {
    pub id: String,
    pub question_id: Option<String>,
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub interrupted: bool,
    /// JSON array of `{w, start_ms, end_ms}`.
    pub words: String,
    /// JSON object of the turn's delivery measurements.
    pub metrics: String,
}

#[derive(Debug)]
pub enum Write {
    Sample { kind: SampleKind, t_ms: u64, data: String },
    Turn(Turn),
    Round { position: i64, ended: bool },
    Question { id: String, round_position: i64, position: i64, text: String, source: QuestionSource, parent_id: Option<String> },
    Score { question_id: String, scores: String, notes: String, brain: String },
    /// Where the interview stands, to resume it after a restart (`None` once it has ended).
    ResumeState(Option<String>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Write>,
    metrics: Arc<Metrics>,
}

impl Recorder {
    /// Starts the writer task; it ends when every `Recorder` is dropped and the queue is written out.
    pub fn spawn(store: Store, interview: InterviewId, metrics: Arc<Metrics>) -> Self {
        let (queue, writes) = mpsc::channel(CAPACITY);
        tokio::spawn(write_all(store, interview, writes));
        Self { queue, metrics }
    }

    /// A per-second sample from a media task: never waits; dropped and counted when the queue is full.
    pub fn sample(&self, kind: SampleKind, t_ms: u64, body: &candor_signaling::EventBody) {
        let data = serde_json::to_string(body).unwrap_or_default();
        if self.queue.try_send(Write::Sample { kind, t_ms, data }).is_err() {
            self.metrics.storage_dropped.inc();
            tracing::warn!(kind = kind.as_str(), "sample not stored: the storage queue is full");
        }
    }

    /// A write from the conversation: waits for room.
    pub async fn write(&self, write: Write) {
        if self.queue.send(write).await.is_err() {
            tracing::warn!("storage writer gone; write lost");
        }
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        self.write(Write::Flush(done)).await;
        let _ = written.await;
    }
}

async fn write_all(store: Store, interview: InterviewId, mut writes: mpsc::Receiver<Write>) {
    while let Some(write) = writes.recv().await {
        if let Write::Flush(done) = write {
            let _ = done.send(());
            continue;
        }
        let started = tokio::time::Instant::now();
        let mut delay = RETRY_FIRST;
        loop {
            match apply(&store, interview, &write).await {
                Ok(()) => break,
                Err(e) if e.is_duplicate() => break, // an earlier try committed it
                Err(e) if e.is_unreachable() && started.elapsed() < RETRY_FOR => {
                    if delay == RETRY_FIRST {
                        tracing::warn!(error = %e, "the database is unreachable; the session's writes wait and retry");
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a session write failed and is lost");
                    break;
                }
            }
        }
    }
}

async fn apply(store: &Store, interview: InterviewId, write: &Write) -> Result<(), crate::store::StoreError> {
    match write {
        Write::Flush(_) => Ok(()),
        Write::Sample { kind, t_ms, data } => {
            store.insert_metric_sample(interview, *kind, i64::try_from(*t_ms).unwrap_or(i64::MAX), data).await
        }
        Write::Turn(t) => {
            store
                .insert_turn(NewTurn {
                    id: &t.id,
                    interview,
                    question_id: t.question_id.as_deref(),
                    speaker: t.speaker,
                    text: &t.text,
                    start_ms: t.start_ms,
                    end_ms: t.end_ms,
                    interrupted: t.interrupted,
                    words: &t.words,
                    metrics: &t.metrics,
                })
                .await
        }
        Write::Round { position, ended } => store.mark_round(interview, *position, *ended).await,
        Write::Question { id, round_position, position, text, source, parent_id } => {
            store
                .insert_question(NewQuestion {
                    id,
                    interview,
                    round_position: *round_position,
                    position: *position,
                    text,
                    source: *source,
                    parent_id: parent_id.as_deref(),
                })
                .await
        }
        Write::Score { question_id, scores, notes, brain } => {
            store.insert_score(NewScore { interview, question_id, scores, notes, brain }).await
        }
        Write::ResumeState(state) => store.save_resume_state(interview, state.as_deref()).await,
    }
}
