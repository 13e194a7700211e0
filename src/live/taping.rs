//! Recording a consenting candidate's session as it happens, without transcoding: the candidate's voice and the
//! interviewer's, each as Ogg Opus, and the candidate's camera with their voice (VP8 in WebM, H.264 in Matroska); each sealed to
//! disk every couple of seconds (`recordings::Tape`). The task listens to the session's fanout like an
//! observer, so nothing here touches the RTP or inference paths; a recorder that falls too far behind loses
//! packets (logged), never the media. Gaps in a voice (lost packets, the interviewer's silences) are filled with
//! empty Opus frames, so a recording keeps the session's timeline and a word's time in the transcript is its time
//! in the recording (less the recording's offset).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::events::EventSink;
use super::media::EncodedFrame;
use super::mux::{FRAME, MAX_GAP, OggOpus, RATE, WebmMux, first_keyframe};
use crate::domain::{InterviewId, UserId};
use crate::recordings::{Recordings, Source, Tape};
use crate::store::Store;

/// Media is sealed to disk this often: a crash loses at most this much.
const SEAL_EVERY: Duration = Duration::from_secs(2);

enum Mux {
    Ogg(OggOpus),
    Webm(WebmMux),
}

impl Mux {
    fn take(&mut self) -> Vec<u8> {
        match self {
            Self::Ogg(m) => m.take(),
            Self::Webm(m) => m.take(),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Ogg(m) => m.finish(),
            Self::Webm(m) => m.finish(),
        }
    }

    fn duration_ms(&self) -> u64 {
        match self {
            Self::Ogg(m) => m.duration_ms(),
            Self::Webm(m) => m.duration_ms(),
        }
    }
}

/// One recording of this session: its muxer and its sealed file, opened at its first packet.
struct Track {
    source: Source,
    /// `None` until known (the camera's container depends on its codec).
    media_type: Option<&'static str>,
    mux: Option<Mux>,
    tape: Option<Tape>,
    /// Where the recording starts on the session's clock.
    offset_ms: u64,
    failed: bool,
}

impl Track {
    fn new(source: Source, media_type: Option<&'static str>) -> Self {
        Self { source, media_type, mux: None, tape: None, offset_ms: 0, failed: false }
    }

    fn is_open(&self) -> bool {
        self.mux.is_some()
    }

    async fn open(&mut self, rec: &Taping, mux: impl FnOnce() -> Mux) {
        if self.is_open() || self.failed {
            return;
        }
        let now = rec.events.t_ms();
        let media_type = self.media_type.unwrap_or("application/octet-stream");
        match rec.recordings.start(rec.interview, rec.owner, self.source, media_type, now).await {
            Ok(tape) => (self.mux, self.tape, self.offset_ms) = (Some(mux()), Some(tape), now),
            Err(e) => self.fail(rec, &e.to_string()),
        }
    }

    fn fail(&mut self, rec: &Taping, error: &str) {
        tracing::error!(interview = %rec.interview, source = self.source.as_str(), error, "recording stopped");
        rec.metrics.recordings.with_label_values(&["failed"]).inc();
        (self.failed, self.mux, self.tape) = (true, None, None);
    }

    async fn seal(&mut self, rec: &Taping) {
        let (Some(mux), Some(tape)) = (self.mux.as_mut(), self.tape.as_mut()) else { return };
        let data = mux.take();
        if data.is_empty() {
            return;
        }
        if let Err(e) = tape.append(data, mux.duration_ms()).await {
            self.fail(rec, &e.to_string());
        }
    }

    async fn finish(mut self, rec: &Taping) {
        let (Some(mux), Some(mut tape)) = (self.mux.take(), self.tape.take()) else { return };
        // Ogg ends with one more (empty) frame.
        let duration = mux.duration_ms() + if matches!(mux, Mux::Ogg(_)) { FRAME * 1000 / RATE } else { 0 };
        let rest = mux.finish();
        let result = match tape.append(rest, duration).await {
            Ok(()) => tape.finish(duration).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.fail(rec, &e.to_string());
        }
    }
}

/// What the recording task needs of its session.
pub struct Taping {
    pub interview: InterviewId,
    pub owner: UserId,
    pub store: Store,
    pub recordings: Arc<Recordings>,
    pub events: EventSink,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The session's media, as the fanout copies it.
pub struct Feeds {
    pub audio: broadcast::Receiver<rtc::rtp::Packet>,
    pub voice: broadcast::Receiver<Bytes>,
    pub frames: broadcast::Receiver<EncodedFrame>,
}

impl Taping {
    /// Records until `stop` if the candidate consented; otherwise returns at once and nothing is written.
    pub async fn run(self, mut feeds: Feeds, stop: CancellationToken) {
        match self.store.interview(self.interview).await {
            Ok(Some(interview)) if interview.recording_consent_at.is_some() => {}
            Ok(_) => return,
            Err(e) => {
                tracing::error!(interview = %self.interview, error = %e, "recording consent unknown: not recording");
                return;
            }
        }
        let mut candidate = Track::new(Source::Candidate, Some("audio/ogg"));
        let mut interviewer = Track::new(Source::Interviewer, Some("audio/ogg"));
        let mut camera = Track::new(Source::Candidate, None);
        // The candidate's packets are placed by their RTP clock, the interviewer's by when they were sent. A new
        // stream (the candidate rejoined on a fresh connection) starts where the session's clock stands.
        let mut rtp_clock: Option<(u32, u32, u64)> = None;
        let mut voice_start: Option<Instant> = None;
        let mut seal = tokio::time::interval(SEAL_EVERY);
        seal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                packet = feeds.audio.recv() => match packet {
                    Ok(packet) => {
                        candidate.open(&self, || Mux::Ogg(OggOpus::new(serial()))).await;
                        let Some(Mux::Ogg(ogg)) = candidate.mux.as_mut() else { continue };
                        let (ssrc, ts) = (packet.header.ssrc, packet.header.timestamp);
                        let at = match rtp_clock {
                            None => ogg.granule(),
                            Some((last_ssrc, _, _)) if last_ssrc != ssrc => {
                                (self.events.t_ms().saturating_sub(candidate.offset_ms) * RATE / 1000).max(ogg.granule())
                            }
                            Some((_, last_ts, last_at)) => {
                                let step = ts.wrapping_sub(last_ts) as i32;
                                if step <= 0 || step as u64 > MAX_GAP { continue } // late, repeated, or a jump
                                last_at + step as u64
                            }
                        };
                        if !ogg.push(&packet.payload, Some(at)) {
                            continue;
                        }
                        rtp_clock = Some((ssrc, ts, at));
                        // The same packet in the camera's file, at its place on the session's clock.
                        let session_ms = candidate.offset_ms + at * 1000 / RATE;
                        if let Some(Mux::Webm(webm)) = camera.mux.as_mut()
                            && let Some(ms) = session_ms.checked_sub(camera.offset_ms)
                        {
                            webm.audio(&packet.payload, ms);
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "recording fell behind the candidate's audio"),
                    Err(RecvError::Closed) => break,
                },
                frame = feeds.voice.recv() => match frame {
                    Ok(frame) => {
                        interviewer.open(&self, || Mux::Ogg(OggOpus::new(serial()))).await;
                        let Some(Mux::Ogg(ogg)) = interviewer.mux.as_mut() else { continue };
                        let started = *voice_start.get_or_insert_with(Instant::now);
                        let at = started.elapsed().as_millis() as u64 * RATE / 1000;
                        // Frames come paced; only a silence longer than a frame or two is a gap.
                        ogg.push(&frame, (at > ogg.granule() + 2 * FRAME).then_some(at));
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "recording fell behind the interviewer's voice"),
                    Err(RecvError::Closed) => break,
                },
                frame = feeds.frames.recv() => match frame {
                    Ok(frame) => {
                        // The file starts at the first keyframe, with its codec's configuration and its size.
                        if !camera.is_open() {
                            let Some((codec, width, height)) = first_keyframe(&frame.data, frame.h264) else { continue };
                            camera.media_type = Some(codec.media_type());
                            camera.open(&self, || Mux::Webm(WebmMux::new(codec, width, height))).await;
                        }
                        if let Some(Mux::Webm(webm)) = camera.mux.as_mut() {
                            webm.video(&frame.data, frame.t_ms.saturating_sub(camera.offset_ms));
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "recording fell behind the candidate's camera"),
                    Err(RecvError::Closed) => break,
                },
                _ = seal.tick() => {
                    for track in [&mut candidate, &mut interviewer, &mut camera] {
                        track.seal(&self).await;
                    }
                }
                () = stop.cancelled() => break,
            }
        }
        for track in [candidate, interviewer, camera] {
            track.finish(&self).await;
        }
    }
}

fn serial() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}
