//! `VoiceOut`: the interviewer's outbound audio track. Audio pushed with `say` is encoded off the async runtime,
//! paced in real time by `candor_pipelines::voice::VoicePacer`, written to the WebRTC track one 20 ms Opus frame
//! at a time, and copied to observers. `stop()` is the barge-in: the queue empties at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use candor_pipelines::voice::{VoiceError, VoicePacer};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::peer::codec;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct VoiceOut {
    pacer: Arc<Mutex<VoicePacer>>,
    wake: Arc<Notify>,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
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
        })
    }

    pub fn track(&self) -> Arc<dyn TrackLocal> {
        self.track.clone()
    }

    /// Queues one utterance (mono PCM at any rate). Encoding runs on the blocking pool.
    pub async fn say(&self, pcm: Vec<f32>, rate: u32) -> Result<(), VoiceError> {
        let pacer = self.pacer.clone();
        tokio::task::spawn_blocking(move || {
            let mut pacer = pacer.lock().unwrap_or_else(|p| p.into_inner());
            pacer.push_pcm(&pcm, rate)?;
            pacer.finish()
        })
        .await
        .expect("voice encoding does not panic")?;
        self.wake.notify_one();
        Ok(())
    }

    /// Barge-in: drops everything queued; returns how many 20 ms frames were dropped.
    pub fn stop(&self) -> usize {
        self.pacer.lock().unwrap_or_else(|p| p.into_inner()).stop()
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

/// A random SSRC; collisions within one session are what matters and are vanishingly unlikely.
pub fn rand_ssrc() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}
