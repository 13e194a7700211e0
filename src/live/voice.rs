//! `VoiceOut`: the interviewer's outbound audio track. Audio pushed with `say` is encoded off the async runtime,
//! paced in real time by `candor_pipelines::voice::VoicePacer`, written to the WebRTC track one 20 ms Opus frame
//! at a time, and copied to observers.
//!
//! `speak` says a text as one utterance: `interviewer.speech` start, each sentence synthesised on the inference
//! pool and queued as soon as it is ready (the first plays while the next is made) with its `avatar.visemes`,
//! end once it has played; the utterance is stored as an interviewer turn. `interrupt` is the barge-in: the queue empties at once (the next
//! 20 ms frame is silence) and the utterance ends as interrupted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use candor_pipelines::voice::tts::{Speech, TtsError, sentences};
use candor_pipelines::voice::visemes::visemes;
use candor_pipelines::voice::{VoiceError, VoicePacer};
use candor_signaling::EventBody;
use candor_signaling::events::{SpeechPhase, VisemeFrame};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::SessionContext;
use super::peer::codec;
use crate::metrics::Metrics;

/// How long a sentence may wait for room in a full inference pool before it is skipped.
const POOL_PATIENCE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct VoiceOut {
    pacer: Arc<Mutex<VoicePacer>>,
    wake: Arc<Notify>,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    /// The utterance being spoken, if any.
    current: Arc<Mutex<Option<Utterance>>>,
    /// The text of the last utterance begun, for `repeat`.
    last_text: Arc<Mutex<Option<String>>>,
}

#[derive(Debug, Clone)]
struct Utterance {
    id: String,
    text: String,
    start_ms: u64,
}

impl VoiceOut {
    pub fn new(stream_id: &str) -> Result<Self, VoiceError> {
        let ssrc = rand_ssrc();
        let encoding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111).rtp_codec,
            ..Default::default()
        };
        let track = MediaStreamTrack::new(
            stream_id.to_string(),
            "interviewer-voice".into(),
            "interviewer-voice".into(),
            RtpCodecKind::Audio,
            vec![encoding],
        );
        let track = TrackLocalStaticSample::new(Instant::now(), track).expect("Opus has a payloader");
        Ok(Self {
            pacer: Arc::new(Mutex::new(VoicePacer::new()?)),
            wake: Arc::new(Notify::new()),
            track: Arc::new(track),
            ssrc,
            current: Arc::default(),
            last_text: Arc::default(),
        })
    }

    pub fn track(&self) -> Arc<dyn TrackLocal> {
        self.track.clone()
    }

    /// Queues audio (mono PCM at any rate). Encoding runs on the blocking pool.
    pub async fn say(&self, pcm: Vec<f32>, rate: u32) -> Result<(), VoiceError> {
        self.say_for(None, pcm, rate).await
    }

    /// Queues audio only if `utterance` (when given) is still the one being spoken. The check and the queueing
    /// happen under the pacer's lock, so a barge-in either sees the audio queued and drops it, or the audio is
    /// never queued: nothing of an interrupted utterance plays.
    async fn say_for(&self, utterance: Option<&str>, pcm: Vec<f32>, rate: u32) -> Result<(), VoiceError> {
        let (pacer, current) = (self.pacer.clone(), self.current.clone());
        let utterance = utterance.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let mut pacer = pacer.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(id) = utterance {
                let current = current.lock().unwrap_or_else(|p| p.into_inner());
                if current.as_ref().is_none_or(|u| u.id != id) {
                    return Ok(());
                }
            }
            pacer.push_pcm(&pcm, rate)?;
            pacer.finish()
        })
        .await
        .expect("voice encoding does not panic")?;
        self.wake.notify_one();
        Ok(())
    }

    /// Drops everything queued; returns how many 20 ms frames were dropped.
    pub fn stop(&self) -> usize {
        self.pacer.lock().unwrap_or_else(|p| p.into_inner()).stop()
    }

    fn queued(&self) -> usize {
        self.pacer.lock().unwrap_or_else(|p| p.into_inner()).queued()
    }

    fn speaking(&self, id: &str) -> bool {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|u| u.id == id)
    }

    /// Says `text` as one utterance and returns when it has played or was interrupted. Without a voice engine
    /// nothing is said.
    pub async fn speak(&self, ctx: &SessionContext, text: &str) {
        let Some(voice) = ctx.engines.voice.clone() else { return };
        let id = uuid::Uuid::new_v4().to_string();
        // A new utterance cuts off one still playing.
        self.interrupt(ctx).await;
        let utterance = Utterance { id: id.clone(), text: text.to_string(), start_ms: ctx.events.t_ms() };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(utterance);
        *self.last_text.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.to_string());
        let start = EventBody::InterviewerSpeech {
            utterance_id: id.clone(),
            phase: SpeechPhase::Start,
            text: text.to_string(),
            interrupted: None,
        };
        ctx.events.send(start).await;
        // Where the next sentence starts in the utterance's audio (sentences play back to back).
        let mut offset_ms = 0;
        for sentence in sentences(text) {
            let sentence = sentence.to_string();
            let voice = voice.clone();
            let Some(speech) = synthesize(ctx, move || voice.synthesize(&sentence)).await else { continue };
            if !self.speaking(&id) {
                return; // interrupted while the sentence was made
            }
            let duration_ms = (speech.pcm.len() as u64 * 1000) / u64::from(speech.rate.max(1));
            let frames = visemes(&speech.phonemes, duration_ms)
                .into_iter()
                .map(|(t_ms, viseme)| VisemeFrame { t_ms: offset_ms + t_ms, viseme: viseme.to_string() })
                .collect();
            if let Err(e) = self.say_for(Some(&id), speech.pcm, speech.rate).await {
                tracing::warn!(error = %e, "interviewer sentence not encoded");
                continue;
            }
            offset_ms += duration_ms;
            ctx.events.send(EventBody::AvatarVisemes { utterance_id: id.clone(), frames }).await;
        }
        let mut poll = tokio::time::interval(Duration::from_millis(VoicePacer::FRAME_MS));
        while self.speaking(&id) && self.queued() > 0 {
            poll.tick().await;
        }
        let finished = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|u| u.id == id) { current.take() } else { None }
        };
        if let Some(utterance) = finished {
            end(ctx, utterance, false).await;
        }
    }

    /// Says the last utterance again (the candidate asked for it); false when nothing was said yet.
    pub async fn repeat(&self, ctx: &SessionContext) -> bool {
        let last = self.last_text.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(text) = last else { return false };
        self.speak(ctx, &text).await;
        true
    }

    /// Barge-in (or a newer utterance): silences the voice at once and ends the utterance being spoken as
    /// interrupted. False when the interviewer was not speaking.
    pub async fn interrupt(&self, ctx: &SessionContext) -> bool {
        let Some(utterance) = self.current.lock().unwrap_or_else(|p| p.into_inner()).take() else { return false };
        let dropped = self.stop();
        tracing::info!(utterance = utterance.id, dropped_ms = dropped as u64 * VoicePacer::FRAME_MS, "utterance cut off");
        end(ctx, utterance, true).await;
        true
    }

    /// Writes due frames to the track until `cancel`. Each frame also goes to `copies` (observers).
    pub async fn run(
        self,
        payload_type: u8,
        copies: broadcast::Sender<Bytes>,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) {
        let clock = Instant::now();
        let now_ms = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        loop {
            let due = self.pacer.lock().unwrap_or_else(|p| p.into_inner()).poll_timeout();
            match due {
                None => tokio::select! {
                    () = self.wake.notified() => continue,
                    () = cancel.cancelled() => return,
                },
                Some(due) if due > now_ms() => tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(due - now_ms())) => {},
                    () = cancel.cancelled() => return,
                },
                Some(_) => {}
            }
            let frame = self.pacer.lock().unwrap_or_else(|p| p.into_inner()).poll_frame(now_ms());
            let Some(frame) = frame else { continue };
            let data = Bytes::from(frame);
            let sample = rtc::media::Sample {
                data: data.clone(),
                duration: Duration::from_millis(VoicePacer::FRAME_MS),
                ..rtc::media::Sample::new(Instant::now())
            };
            match self.track.write_sample(self.ssrc, payload_type, &sample, &[]).await {
                Ok(()) => metrics.rtp_out(true, data.len()),
                Err(e) => tracing::debug!(error = %e, "interviewer voice frame not sent"),
            }
            let _ = copies.send(data);
        }
    }
}

/// Runs one synthesis on the inference pool, waiting a little for room when it is full.
async fn synthesize<F>(ctx: &SessionContext, job: F) -> Option<Speech>
where
    F: FnOnce() -> Result<Speech, TtsError> + Send + 'static,
{
    let waited = Instant::now();
    let mut job = job;
    let result = loop {
        match ctx.engines.pool.submit(job) {
            Ok(rx) => break rx.await.ok(),
            Err(refused) if waited.elapsed() < POOL_PATIENCE => {
                job = refused;
                tokio::time::sleep(Duration::from_millis(VoicePacer::FRAME_MS)).await;
            }
            Err(_) => break None,
        }
    };
    match result {
        Some(Ok(speech)) => Some(speech),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "interviewer sentence not synthesised");
            None
        }
        None => {
            tracing::warn!("interviewer sentence skipped: the inference pool stayed full");
            None
        }
    }
}

/// `interviewer.speech` end, and the utterance stored as an interviewer turn.
async fn end(ctx: &SessionContext, utterance: Utterance, interrupted: bool) {
    let body = EventBody::InterviewerSpeech {
        utterance_id: utterance.id.clone(),
        phase: SpeechPhase::End,
        text: utterance.text.clone(),
        interrupted: Some(interrupted),
    };
    ctx.events.send(body).await;
    let turn = crate::store::NewTurn {
        id: &utterance.id,
        interview: ctx.interview,
        question_id: None,
        speaker: "interviewer",
        text: &utterance.text,
        start_ms: utterance.start_ms,
        end_ms: ctx.events.t_ms(),
        interrupted,
        words: "[]",
        metrics: "{}",
    };
    if let Err(e) = ctx.store.insert_turn(turn).await {
        tracing::warn!(error = %e, "interviewer turn not stored");
    }
}

/// A random SSRC; collisions within one session are what matters and are vanishingly unlikely.
pub fn rand_ssrc() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}
