//! The speech side of a live session: per candidate a `SpeechFeed` that moves decoded 16 kHz audio through a `SpeechPipeline` on the inference pool and turns its
//! results into v1 events (`transcript.partial`, `transcript.final`, rolling `speech.metrics` fields, sparse
//! `cue`s) and stored turns.
//!
//! Queue policy: while the pipeline works on one chunk, new audio waits in the feed's backlog and goes in as
//! one larger chunk next (counted as a merge). Past `MAX_BACKLOG_MS` the oldest audio is dropped and counted:
//! never silently.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candor_pipelines::speech::pipeline::{FinalTurn, SpeechError, SpeechEvent, SpeechPipeline};
use candor_pipelines::speech::TimedWord;
use candor_pipelines::speech::stt::{GiveWay, SttOptions};
use candor_pipelines::speech::vad::CHUNK_MS;
use candor_signaling::EventBody;
use candor_signaling::events::{CueKind, Word};
use tokio::sync::oneshot;

use super::SessionContext;
use super::conversation::{Message, SpokenTurn};
use candor_interviewer::Input;
use super::pool::{completion, spare_cores};
use super::engines::Engines;

/// Audio waiting for the pipeline beyond this is dropped (oldest first) and counted.
const MAX_BACKLOG_MS: usize = 30_000;
/// Silence fed after a track ends to close the open turn: longer than the longest end-of-turn wait.
const FLUSH_SILENCE_MS: usize = 3000;
/// Smallest chunk worth a trip to the pool.
const MIN_CHUNK_MS: usize = 96;
/// In the silence that may end a turn: one VAD chunk, so the end is decided as soon as its audio is in (a
/// larger chunk would make it wait for audio to fill, and more so after a decode ahead).
const ENDING_CHUNK_MS: usize = CHUNK_MS as usize;
/// Pace outside this band (words per minute) earns a cue, judged on turns of at least `PACE_MIN_WORDS`.
const PACE_FAST: f32 = 160.0;
const PACE_SLOW: f32 = 110.0;
const PACE_MIN_WORDS: usize = 15;
const FILLERS_PER_MIN: f32 = 5.0;
const LONG_PAUSE_MS: u64 = 3000;
/// Mean level while speaking under this, over `VOLUME_WINDOW` seconds, earns a volume cue.
const QUIET_DBFS: f32 = -45.0;
const VOLUME_WINDOW: usize = 5;

/// A finished chunk: the pipeline back, its events, the time the chunk took, its audio length (ms) and the part
/// of the time spent in VAD (ms).
type Done = (SpeechPipeline, Result<Vec<SpeechEvent>, SpeechError>, Duration, usize, f64);

/// Session-wide delivery so far, for the rolling fields of `speech.metrics`.
#[derive(Default)]
struct Rolling {
    content_words: usize,
    speaking_ms: u64,
    fillers: usize,
    longest_pause_ms: u64,
    pitch_hz: Option<f32>,
    pitch_var: Option<f32>,
}

pub struct SpeechFeed {
    ctx: SessionContext,
    engines: Arc<Engines>,
    pipeline: Option<SpeechPipeline>,
    backlog: Vec<f32>,
    in_flight: Option<oneshot::Receiver<Done>>,
    /// Session time of the first audio sample: the pipeline's clock starts there.
    offset_ms: Option<u64>,
    /// Samples pushed so far, and the session time the latest arrived: where the stream's clock stands against
    /// the session's now (they drift apart when a sender falls behind or packets are lost).
    pushed_samples: u64,
    arrival_offset_ms: i64,
    turn_ids: HashMap<u32, String>,
    rolling: Rolling,
    recent_levels: Vec<f32>,
    /// The pipeline's careful re-decodes already counted in the metrics.
    redecodes_seen: u64,
    ahead_dropped_seen: u64,
    partials_shed_seen: u64,
    /// Counted in `Engines::speech_streams` (it had a pipeline).
    counted: bool,
}

impl Drop for SpeechFeed {
    fn drop(&mut self) {
        if self.counted {
            self.engines.speech_streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl SpeechFeed {
    pub fn new(ctx: SessionContext, engines: Arc<Engines>) -> Self {
        let pipeline = engines.speech.clone().and_then(|speech| {
            SpeechPipeline::new(speech, Default::default(), SttOptions::default())
                .map_err(|e| tracing::warn!(error = %e, "no speech pipeline for this session"))
                .ok()
        });
        let pipeline = pipeline.map(|mut pipeline| {
            // A partial stops when urgent work waits for a worker: a turn ending elsewhere, a sentence to speak.
            let load = engines.pool.load();
            pipeline.set_give_way(Some(GiveWay::new(move || load.urgent_waiting() > 0)));
            pipeline
        });
        let pipeline_counted = pipeline.is_some();
        if pipeline_counted {
            engines.speech_streams.fetch_add(1, Ordering::Relaxed);
        }
        Self {
            ctx,
            engines,
            pipeline,
            backlog: Vec::new(),
            in_flight: None,
            offset_ms: None,
            pushed_samples: 0,
            arrival_offset_ms: 0,
            turn_ids: HashMap::new(),
            rolling: Rolling::default(),
            recent_levels: Vec::new(),
            redecodes_seen: 0,
            ahead_dropped_seen: 0,
            partials_shed_seen: 0,
            counted: pipeline_counted,
        }
    }

    /// New 16 kHz audio.
    pub fn push(&mut self, samples: &[f32]) {
        if self.pipeline.is_none() && self.in_flight.is_none() {
            return;
        }
        let now_ms = self.ctx.events.t_ms();
        self.offset_ms.get_or_insert(now_ms);
        self.pushed_samples += samples.len() as u64;
        self.arrival_offset_ms = now_ms as i64 - (self.pushed_samples / 16) as i64;
        self.backlog.extend_from_slice(samples);
        let max = MAX_BACKLOG_MS * 16;
        if self.backlog.len() > max {
            let excess = self.backlog.len() - max;
            self.backlog.drain(..excess);
            self.ctx.metrics.speech_overflow_ms.inc_by((excess / 16) as u64);
            tracing::warn!(dropped_ms = excess / 16, "speech backlog overflow: the inference pool is saturated");
        }
        self.submit();
    }

    fn submit(&mut self) {
        let ending = self.pipeline.as_ref().is_some_and(SpeechPipeline::ending);
        let min_ms = if ending { ENDING_CHUNK_MS } else { MIN_CHUNK_MS };
        if self.in_flight.is_some() || self.backlog.len() < min_ms * 16 {
            return;
        }
        let Some(pipeline) = self.pipeline.take() else { return };
        let chunk = std::mem::take(&mut self.backlog);
        let audio_ms = chunk.len() / 16;
        // The work travels in a slot so that a refused job gives both back untouched.
        let slot = Arc::new(Mutex::new(Some((pipeline, chunk))));
        let work = slot.clone();
        let load = self.engines.pool.load();
        let only_stream = self.engines.speech_streams.load(Ordering::Relaxed) <= 1;
        let job = move || {
            let (mut pipeline, chunk) =
                work.lock().unwrap_or_else(|p| p.into_inner()).take().expect("the work is there");
            let (running, waiting) = load.others();
            // Cores a decode ahead may take: none that another stream or another process may want.
            let spare = if only_stream && running == 0 { spare_cores() } else { 0.0 };
            pipeline.set_load(running > 0, waiting > 0, spare);
            let started = Instant::now();
            let vad_before = pipeline.vad_ms_total;
            let result = pipeline.push(&chunk);
            let vad_ms = pipeline.vad_ms_total - vad_before;
            (pipeline, result, started.elapsed(), audio_ms, vad_ms)
        };
        // A turn whose voice has stopped may end on this chunk, and its final may decode ahead in it: the
        // conversation waits for that, so it goes before the queued audio of streams still speaking.
        let submitted = if ending { self.engines.pool.submit_urgent(job) } else { self.engines.pool.submit(job) };
        match submitted {
            Ok(rx) => {
                if audio_ms > 4 * MIN_CHUNK_MS {
                    self.ctx.metrics.speech_merged_chunks.inc();
                }
                self.in_flight = Some(rx);
            }
            Err(_) => {
                // The pool is full: keep the audio (it is not lost) and try again with the next packet.
                let (pipeline, chunk) = slot.lock().unwrap_or_else(|p| p.into_inner()).take().expect("never started");
                self.pipeline = Some(pipeline);
                self.backlog = chunk;
            }
        }
    }

    /// The candidate's track ended (a dropped connection, a rejoin): silence closes the open turn, so the audio
    /// already received is transcribed and reaches the conversation. Gives up after `FLUSH_SILENCE_MS`.
    pub async fn flush(&mut self) {
        let step = vec![0.0; 16 * 100];
        let mut silence_ms = 0;
        loop {
            if self.in_flight.is_some() {
                let done = self.done().await;
                self.handle(done).await;
                continue;
            }
            let open = self.pipeline.as_ref().is_some_and(SpeechPipeline::is_speaking);
            if !open || silence_ms >= FLUSH_SILENCE_MS {
                return;
            }
            self.push(&step);
            silence_ms += 100;
            if self.in_flight.is_none() {
                // Not submitted (the pool is full, or the chunk is still short): let the pool make room.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Completes when the pipeline finished a chunk (`None`: the job was lost); pending while nothing is in
    /// flight.
    pub async fn done(&mut self) -> Option<Done> {
        completion(&mut self.in_flight).await
    }

    pub async fn handle(&mut self, done: Option<Done>) {
        self.in_flight = None;
        // The pipeline went with a lost job (a panic in an engine): this session's speech stops, said once,
        // rather than waiting for it forever (and its end with it).
        let Some((pipeline, result, elapsed, audio_ms, vad_ms)) = done else {
            return tracing::error!("a speech job was lost; speech stops for this session");
        };
        let metrics = &self.ctx.metrics;
        metrics.stt_redecodes.inc_by(pipeline.redecodes - self.redecodes_seen);
        self.redecodes_seen = pipeline.redecodes;
        metrics.stt_ahead_dropped.inc_by(pipeline.ahead_dropped - self.ahead_dropped_seen);
        self.ahead_dropped_seen = pipeline.ahead_dropped;
        metrics.stt_partials_shed.inc_by(pipeline.partials_shed - self.partials_shed_seen);
        self.partials_shed_seen = pipeline.partials_shed;
        self.pipeline = Some(pipeline);
        metrics.speech_stage.with_label_values(&["pipeline_chunk"]).observe(elapsed.as_secs_f64());
        metrics.speech_stage.with_label_values(&["vad"]).observe(vad_ms / 1000.0);
        if audio_ms > 0 {
            metrics
                .speech_stage
                .with_label_values(&["per_audio_second"])
                .observe(elapsed.as_secs_f64() * 1000.0 / audio_ms as f64);
        }
        match result {
            Ok(events) => {
                for event in events {
                    self.emit(event).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "speech pipeline failed on a chunk"),
        }
        self.submit();
    }

    fn turn_id(&mut self, turn: u32) -> String {
        self.turn_ids.entry(turn).or_insert_with(|| uuid::Uuid::new_v4().to_string()).clone()
    }

    async fn emit(&mut self, event: SpeechEvent) {
        let offset = self.offset_ms.unwrap_or(0);
        match event {
            SpeechEvent::TurnStarted { .. } => {
                // The candidate speaks: a barge-in if the interviewer is talking (the conversation decides).
                self.ctx.conversation.send(Message::Input(Input::CandidateStarted)).await;
            }
            SpeechEvent::Discarded { .. } => {}
            SpeechEvent::Partial { turn, text, decode_ms } => {
                self.ctx.metrics.speech_stage.with_label_values(&["stt_partial"]).observe(decode_ms as f64 / 1000.0);
                if !text.is_empty() {
                    let turn_id = self.turn_id(turn);
                    self.ctx.events.send(EventBody::TranscriptPartial { turn_id, text }).await;
                }
            }
            SpeechEvent::Expected { words, delivery, .. } => {
                // Speculation: dropped rather than waited for when the conversation is behind.
                self.ctx.conversation.offer(Message::Expected { words: session_words(&words, offset), wpm: delivery.wpm });
            }
            SpeechEvent::Final(turn) => self.finish(turn, offset).await,
        }
    }

    async fn finish(&mut self, turn: FinalTurn, offset: u64) {
        let metrics = &self.ctx.metrics;
        metrics.speech_stage.with_label_values(&["stt_final"]).observe(turn.decode_ms as f64 / 1000.0);
        // What the end of the turn waited for its final: nothing when it was decoded ahead, in the silence.
        let waited_ms = if turn.decoded_ahead { 0 } else { turn.decode_ms };
        metrics.speech_stage.with_label_values(&["stt_final_wait"]).observe(waited_ms as f64 / 1000.0);
        if turn.audio_ms > 0 {
            metrics.stt_realtime_factor.observe(turn.decode_ms as f64 / turn.audio_ms as f64);
        }
        let reason = turn.waited_for.map_or("silence", |h| h.as_str());
        metrics.turns.with_label_values(&[reason]).inc();
        // The turn detector's latency: silence waited before it decided.
        metrics.speech_stage.with_label_values(&["turn_wait"]).observe(turn.silence_ms as f64 / 1000.0);
        tracing::info!(
            turn = turn.turn,
            reason,
            silence_ms = turn.silence_ms,
            words = turn.transcript.words.len(),
            decode_ms = turn.decode_ms,
            // How far the decision ran behind the audio it was made on (inference queueing, decoding).
            behind_ms = self.ctx.events.t_ms() as i64 - self.arrived_ms(turn.end_ms + turn.silence_ms) as i64,
            "turn ended"
        );

        let turn_id = self.turn_id(turn.turn);
        let words = session_words(&turn.transcript.words, offset);
        let delivery = &turn.delivery;
        self.rolling.content_words += delivery.content_words;
        self.rolling.speaking_ms += delivery.speaking_ms;
        self.rolling.fillers += delivery.fillers;
        self.rolling.longest_pause_ms = self.rolling.longest_pause_ms.max(delivery.longest_pause_ms);
        self.rolling.pitch_hz = turn.pitch_hz.or(self.rolling.pitch_hz);
        self.rolling.pitch_var = turn.pitch_var.or(self.rolling.pitch_var);

        let stored = serde_json::json!({
            "wpm": delivery.wpm, "fillers": delivery.filler_counts, "longest_pause_ms": delivery.longest_pause_ms,
            "long_pauses": delivery.long_pauses, "pitch_hz": turn.pitch_hz, "pitch_var": turn.pitch_var,
            "waited_for": turn.waited_for.map(|h| h.as_str()),
        });
        // The conversation stores the turn with the question it answers and sends `transcript.final`.
        let spoken = SpokenTurn {
            turn_id,
            text: turn.transcript.text.clone(),
            words,
            start_ms: turn.start_ms + offset,
            end_ms: turn.end_ms + offset,
            voice_arrived_ms: self.arrived_ms(turn.end_ms),
            wpm: delivery.wpm,
            metrics: stored.to_string(),
        };
        self.ctx.conversation.send(Message::Spoken(spoken)).await;
        self.consider_cue(&turn).await;
    }

    /// When audio at stream time `stream_ms` arrived, in session time.
    fn arrived_ms(&self, stream_ms: u64) -> u64 {
        u64::try_from(stream_ms as i64 + self.arrival_offset_ms).unwrap_or(0)
    }

    /// The rolling fields of `speech.metrics`.
    pub fn metrics(&self, volume_dbfs: f32) -> EventBody {
        let rolling = &self.rolling;
        let minutes = rolling.speaking_ms as f32 / 60_000.0;
        let spoke = rolling.speaking_ms >= 1000;
        EventBody::SpeechMetrics {
            wpm: spoke.then(|| (rolling.content_words as f32 / minutes).round()),
            fillers: Some(rolling.fillers as u32).filter(|_| spoke || rolling.fillers > 0),
            filler_per_min: spoke.then(|| (rolling.fillers as f32 / minutes * 10.0).round() / 10.0),
            longest_pause_ms: spoke.then_some(rolling.longest_pause_ms),
            pitch_hz: rolling.pitch_hz.map(|p| p.round()),
            pitch_var: rolling.pitch_var.map(|v| (v * 100.0).round() / 100.0),
            volume_dbfs: Some((volume_dbfs * 10.0).round() / 10.0),
            speaking_share: self.offset_ms.and_then(|start| {
                let elapsed = self.ctx.events.t_ms().saturating_sub(start);
                (elapsed >= 1000)
                    .then(|| ((rolling.speaking_ms as f32 / elapsed as f32).min(1.0) * 100.0).round() / 100.0)
            }),
        }
    }

    /// One second's level, for the quiet-voice cue.
    pub async fn level(&mut self, dbfs: f32) {
        if self.pipeline.as_ref().is_some_and(SpeechPipeline::is_speaking) {
            self.recent_levels.push(dbfs);
            if self.recent_levels.len() > VOLUME_WINDOW {
                self.recent_levels.remove(0);
            }
            let mean = self.recent_levels.iter().sum::<f32>() / self.recent_levels.len() as f32;
            if self.recent_levels.len() == VOLUME_WINDOW && mean < QUIET_DBFS {
                let text = "You are hard to hear: speak up a little or move closer to the microphone.";
                self.ctx.events.cue(CueKind::VolumeLow, text).await;
            }
        }
    }

    async fn consider_cue(&mut self, turn: &FinalTurn) {
        let delivery = &turn.delivery;
        let minutes = self.rolling.speaking_ms as f32 / 60_000.0;
        let (kind, text) = match delivery.wpm {
            Some(wpm) if delivery.content_words >= PACE_MIN_WORDS && wpm > PACE_FAST => {
                (CueKind::PaceFast, "You are speaking quickly; slowing down a little helps your points land.")
            }
            Some(wpm) if delivery.content_words >= PACE_MIN_WORDS && wpm < PACE_SLOW => {
                (CueKind::PaceSlow, "Your pace is slow; try keeping a steadier rhythm.")
            }
            _ if minutes >= 0.5 && self.rolling.fillers as f32 / minutes > FILLERS_PER_MIN => {
                (CueKind::Fillers, "Many filler words: a short silent pause works better than \"um\".")
            }
            _ if delivery.longest_pause_ms > LONG_PAUSE_MS => {
                (CueKind::LongPause, "Long pause: it is fine to say you are thinking, then continue.")
            }
            _ => return,
        };
        self.ctx.events.cue(kind, text).await;
    }
}

/// A turn's words on the session's clock (the stream's starts `offset` ms into the session).
fn session_words(words: &[TimedWord], offset: u64) -> Vec<Word> {
    words.iter().map(|w| Word { w: w.text.clone(), start_ms: w.start_ms + offset, end_ms: w.end_ms + offset }).collect()
}
