//! `VoiceOut`: the interviewer's outbound audio track. Audio is encoded off the async runtime (its own encoder,
//! so encoding never holds the pacer), paced in real time by `candor_pipelines::voice::VoicePacer`, written to
//! the WebRTC track one 20 ms Opus frame at a time, and copied to observers.
//!
//! `speak` says a text as one utterance: `interviewer.speech` start, each sentence synthesised on the inference
//! pool and queued as soon as it is ready (the first plays while the next is made) with its `avatar.visemes`,
//! end once it has played; the utterance is stored as an interviewer turn. `interrupt` is the barge-in: the
//! queue empties at once (the next 20 ms frame is silence), the utterance ends as interrupted, and what had been
//! said by then (whole sentences played, and the share of the one playing) is what is stored and returned.
//! `prepare` makes a reply's first sentence before the reply is asked for (while the silence that ends the
//! candidate's turn runs on), so the reply starts the moment the turn ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use candor_pipelines::voice::tts::{Speech, TtsError, sentences};
use candor_pipelines::voice::visemes::visemes;
use candor_pipelines::voice::{VoiceEncoder, VoiceError, VoicePacer};
use candor_signaling::EventBody;
use candor_signaling::events::{SpeechPhase, VisemeFrame};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use tokio::sync::{Notify, broadcast, oneshot};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::SessionContext;
use super::peer::codec;
use super::recorder::{Turn, Write};
use crate::domain::Speaker;
use crate::metrics::Metrics;

/// How long a sentence may wait for room in a full inference pool before it is skipped.
const POOL_PATIENCE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct VoiceOut {
    pacer: Arc<Mutex<VoicePacer>>,
    encoder: Arc<Mutex<VoiceEncoder>>,
    wake: Arc<Notify>,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    /// The utterance being spoken, if any.
    current: Arc<Mutex<Option<Utterance>>>,
    /// What the last few cut utterances had said, by utterance id, for their `speak` to return.
    cuts: Arc<Mutex<Vec<(String, String)>>>,
    /// A sentence being synthesised before it was asked for (`prepare`), and where its audio will arrive.
    prepared: Arc<Mutex<Option<(String, Made)>>>,
}

/// Where a sentence's synthesis will arrive.
type Made = oneshot::Receiver<Result<Speech, TtsError>>;

#[derive(Debug, Clone)]
struct Utterance {
    id: String,
    text: String,
    question_id: Option<String>,
    start_ms: u64,
    /// Queued sentences: text and duration, in order.
    sentences: Vec<(String, u64)>,
    /// When its audio began playing.
    playing_since: Option<Instant>,
}

impl Utterance {
    /// What had been said `played_ms` into the audio: whole sentences, and the words of the one playing in
    /// proportion to its time played.
    fn said_by(&self, played_ms: u64) -> String {
        let mut said: Vec<String> = Vec::new();
        let mut start = 0;
        for (text, duration) in &self.sentences {
            if played_ms >= start + duration {
                said.push(text.clone());
            } else if played_ms > start {
                let words: Vec<&str> = text.split_whitespace().collect();
                let share = (played_ms - start) as f64 / (*duration).max(1) as f64;
                said.push(words[..((words.len() as f64 * share) as usize).min(words.len())].join(" "));
                break;
            } else {
                break;
            }
            start += duration;
        }
        said.join(" ").trim().to_string()
    }
}

/// How an utterance ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub interrupted: bool,
    /// What was said: all of it, or what was said before the cut.
    pub spoken: String,
    /// Session time the first audio was queued (the pacer sends it within a frame), if any was.
    pub first_audio_ms: Option<u64>,
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
            encoder: Arc::new(Mutex::new(VoiceEncoder::new()?)),
            wake: Arc::new(Notify::new()),
            track: Arc::new(track),
            ssrc,
            current: Arc::default(),
            cuts: Arc::default(),
            prepared: Arc::default(),
        })
    }

    pub fn track(&self) -> Arc<dyn TrackLocal> {
        self.track.clone()
    }

    /// Encodes audio on the blocking pool and queues it if `utterance` is still the one being spoken. The check
    /// and the queueing happen under the utterance lock, so a barge-in either sees the audio queued and drops
    /// it, or the audio is never queued: nothing of an interrupted utterance plays.
    async fn say_for(&self, utterance: &str, pcm: Vec<f32>, rate: u32, text: String) -> Result<(), VoiceError> {
        let encoder = self.encoder.clone();
        let frames = tokio::task::spawn_blocking(move || encoder.lock().unwrap_or_else(|p| p.into_inner()).encode(&pcm, rate))
            .await
            .expect("voice encoding does not panic")?;
        let duration_ms = frames.len() as u64 * VoicePacer::FRAME_MS;
        {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            let Some(speaking) = current.as_mut().filter(|u| u.id == utterance) else { return Ok(()) };
            self.pacer.lock().unwrap_or_else(|p| p.into_inner()).queue(frames)?;
            speaking.sentences.push((text, duration_ms));
            speaking.playing_since.get_or_insert_with(Instant::now);
        }
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

    /// Says `text` as one utterance; returns once it has played or was cut, with what was said. Without a voice
    /// engine nothing is heard, but the utterance's events and turn are still sent and stored.
    pub async fn speak(&self, ctx: &SessionContext, text: &str, question_id: Option<&str>) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        // A new utterance cuts off one still playing.
        self.interrupt(ctx).await;
        let utterance = Utterance {
            id: id.clone(),
            text: text.to_string(),
            question_id: question_id.map(str::to_string),
            start_ms: ctx.events.t_ms(),
            sentences: Vec::new(),
            playing_since: None,
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(utterance);
        let start =
            EventBody::InterviewerSpeech { utterance_id: id.clone(), phase: SpeechPhase::Start, text: text.to_string(), interrupted: None };
        ctx.events.send(start).await;
        let mut first_audio_ms = None;
        if let Some(voice) = ctx.engines.voice.clone() {
            // Where the next sentence starts in the utterance's audio (sentences play back to back).
            let mut offset_ms = 0;
            for (index, sentence) in sentences(text).into_iter().enumerate() {
                let sentence = sentence.to_string();
                let prepared = match (index == 0).then(|| self.take_prepared(ctx, &sentence)).flatten() {
                    Some(made) => made.await.ok().and_then(Result::ok),
                    None => None,
                };
                let Some(speech) = (match prepared {
                    Some(speech) => Some(speech),
                    None => {
                        let (voice, said) = (voice.clone(), sentence.clone());
                        synthesize(ctx, move || voice.synthesize(&said)).await
                    }
                }) else {
                    continue;
                };
                if !self.speaking(&id) {
                    break; // interrupted while the sentence was made
                }
                let duration_ms = (speech.pcm.len() as u64 * 1000) / u64::from(speech.rate.max(1));
                let frames = visemes(&speech.phonemes, duration_ms)
                    .into_iter()
                    .map(|(t_ms, viseme)| VisemeFrame { t_ms: offset_ms + t_ms, viseme: viseme.to_string() })
                    .collect();
                if let Err(e) = self.say_for(&id, speech.pcm, speech.rate, sentence).await {
                    tracing::warn!(error = %e, "interviewer sentence not encoded");
                    continue;
                }
                first_audio_ms.get_or_insert_with(|| ctx.events.t_ms());
                offset_ms += duration_ms;
                ctx.events.send(EventBody::AvatarVisemes { utterance_id: id.clone(), frames }).await;
            }
            let mut poll = tokio::time::interval(Duration::from_millis(VoicePacer::FRAME_MS));
            while self.speaking(&id) && self.queued() > 0 {
                poll.tick().await;
            }
        }
        let finished = {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|u| u.id == id) { current.take() } else { None }
        };
        match finished {
            Some(utterance) => {
                let spoken = utterance.text.clone();
                end(ctx, utterance, spoken.clone(), false).await;
                Outcome { interrupted: false, spoken, first_audio_ms }
            }
            // Cut by a barge-in or a newer utterance: `interrupt` ended it and knows what was said.
            None => Outcome { interrupted: true, spoken: self.last_cut(&id), first_audio_ms },
        }
    }

    /// Starts synthesising the first sentence of `text`, the reply expected once the candidate's turn ends, so
    /// that `speak` finds it made. Only while the pool has a worker free for it: speculation must not hold up
    /// anyone's audio. A newer expectation replaces an older one.
    pub fn prepare(&self, ctx: &SessionContext, text: &str) {
        let (Some(voice), Some(first)) = (ctx.engines.voice.clone(), sentences(text).first().map(|s| s.to_string())) else { return };
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        if prepared.as_ref().is_some_and(|(made, _)| *made == first) {
            return;
        }
        let pool = &ctx.engines.pool;
        if !pool.has_free_worker() {
            ctx.metrics.voice_prepared.with_label_values(&["skipped"]).inc();
            return;
        }
        let said = first.clone();
        if let Ok(made) = pool.submit(move || voice.synthesize(&said))
            && prepared.replace((first, made)).is_some()
        {
            ctx.metrics.voice_prepared.with_label_values(&["unused"]).inc();
        }
    }

    /// The prepared sentence if it is `sentence`; either way the preparation is over.
    fn take_prepared(&self, ctx: &SessionContext, sentence: &str) -> Option<Made> {
        let (made, audio) = self.prepared.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let used = made == sentence;
        ctx.metrics.voice_prepared.with_label_values(&[if used { "used" } else { "unused" }]).inc();
        used.then_some(audio)
    }

    fn last_cut(&self, id: &str) -> String {
        let cut = self.cuts.lock().unwrap_or_else(|p| p.into_inner());
        cut.iter().rev().find(|(u, _)| u == id).map(|(_, s)| s.clone()).unwrap_or_default()
    }

    /// Barge-in (or a newer utterance): silences the voice at once and ends the utterance being spoken as
    /// interrupted, storing what had been said. False when the interviewer was not speaking.
    pub async fn interrupt(&self, ctx: &SessionContext) -> bool {
        let Some(utterance) = self.current.lock().unwrap_or_else(|p| p.into_inner()).take() else { return false };
        let dropped = self.stop();
        let played_ms = utterance.playing_since.map_or(0, |since| since.elapsed().as_millis() as u64);
        let spoken = utterance.said_by(played_ms);
        {
            let mut cuts = self.cuts.lock().unwrap_or_else(|p| p.into_inner());
            if cuts.len() >= 8 {
                cuts.remove(0);
            }
            cuts.push((utterance.id.clone(), spoken.clone()));
        }
        tracing::info!(utterance = utterance.id, dropped_ms = dropped as u64 * VoicePacer::FRAME_MS, "utterance cut off");
        end(ctx, utterance, spoken, true).await;
        true
    }

    /// Writes due frames to the track until `cancel`. Each frame also goes to `copies` (observers).
    pub async fn run(self, payload_type: u8, copies: broadcast::Sender<Bytes>, metrics: Arc<Metrics>, cancel: CancellationToken) {
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

/// Runs one synthesis on the inference pool, ahead of queued audio (someone is waiting to hear it), waiting a
/// little for room when the pool is full.
async fn synthesize<F>(ctx: &SessionContext, job: F) -> Option<Speech>
where
    F: FnOnce() -> Result<Speech, TtsError> + Send + 'static,
{
    let waited = Instant::now();
    let mut job = job;
    let result = loop {
        match ctx.engines.pool.submit_urgent(job) {
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

/// `interviewer.speech` end, and the utterance stored as an interviewer turn with what was said.
async fn end(ctx: &SessionContext, utterance: Utterance, spoken: String, interrupted: bool) {
    let body = EventBody::InterviewerSpeech {
        utterance_id: utterance.id.clone(),
        phase: SpeechPhase::End,
        text: utterance.text.clone(),
        interrupted: Some(interrupted),
    };
    ctx.events.send(body).await;
    let turn = Turn {
        id: utterance.id,
        question_id: utterance.question_id,
        speaker: Speaker::Interviewer,
        text: spoken,
        start_ms: utterance.start_ms,
        end_ms: ctx.events.t_ms(),
        interrupted,
        words: "[]".into(),
        metrics: serde_json::json!({ "text": utterance.text }).to_string(),
    };
    ctx.recorder.write(Write::Turn(turn)).await;
}

/// A random SSRC; collisions within one session are what matters and are vanishingly unlikely.
pub fn rand_ssrc() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_the_sentences_said_and_the_share_of_the_one_playing() {
        let utterance = Utterance {
            id: "u".into(),
            text: "Thanks. Tell me about a project you led.".into(),
            question_id: None,
            start_ms: 0,
            sentences: vec![("Thanks.".into(), 600), ("Tell me about a project you led.".into(), 2000)],
            playing_since: None,
        };
        assert_eq!(utterance.said_by(0), "");
        assert_eq!(utterance.said_by(700), "Thanks.");
        assert_eq!(utterance.said_by(600 + 1000), "Thanks. Tell me about");
        assert_eq!(utterance.said_by(10_000), "Thanks. Tell me about a project you led.");
    }
}
