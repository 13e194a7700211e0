//! Inbound media of a candidate: RTP in, decoded signals and events out.
//!
//! - Audio: Opus RTP is put back in order (`Reorder`), decoded (with loss concealment for small gaps), resampled to 16 kHz mono for the speech
//!   pipelines, and measured: one `speech.metrics` event and one stored sample per second.
//! - Video: RTP is reassembled into frames and decoded on a dedicated thread. Every frame must be decoded, but
//!   only about five a second are converted for face analysis (latest frame wins): one `vision.metrics` event
//!   and one stored sample per second. If the decoder falls behind, whole frames are dropped and a keyframe is
//!   requested, since later frames cannot be decoded without it.
//!
//! Every packet is also copied to observers, unchanged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candor_pipelines::audio::{LevelMeter, OPUS_RATE, OpusDecoder, PIPELINE_RATE, Resampler};
use candor_pipelines::rtp::{FrameAssembler, H264Depacketizer, Released, Reorder};
use candor_pipelines::video::{DecodedFrame, VideoCodec, VideoDecoder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::vp8::Vp8Packet;
use tokio::sync::broadcast;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::SessionContext;
use crate::domain::SampleKind;
use super::speech::SpeechFeed;
use super::vision::VisionFeed;

/// Gaps up to this many packets (100 ms of 20 ms frames) are concealed; longer ones restart the timeline.
const MAX_CONCEALED_PACKETS: u64 = 5;
/// Audio packets that may wait behind a missing one for it to arrive out of order (160 ms of 20 ms frames):
/// more than the reordering of 100 ms of jitter; a packet lost for good holds the stream this long at most.
const REORDER_DEPTH: usize = 8;
/// Without audio packets for twice this long, the speech pipeline gets this much silence at a time.
const SILENCE_FILL: Duration = Duration::from_millis(200);
/// Encoded frames waiting for the video decoder; about half a second at 15 fps.
const VIDEO_QUEUE: usize = 8;
/// Analysis rate cap (frames per second) and frame size (longer side, pixels).
const ANALYSIS_INTERVAL_MS: u64 = 200;
const ANALYSIS_MAX_SIDE: u32 = 640;

/// The candidate's audio until the track ends or `stop` (the connection dropped, the server is stopping); then
/// the open turn is closed and transcribed.
pub async fn run_audio(
    ctx: SessionContext,
    track: Arc<dyn TrackRemote>,
    copies: broadcast::Sender<rtc::rtp::Packet>,
    stop: tokio_util::sync::CancellationToken,
) {
    let Ok(decoder) = OpusDecoder::new() else {
        tracing::error!("cannot create an Opus decoder");
        return;
    };
    let mut audio =
        AudioDecode { decoder, resampler: Resampler::new(OPUS_RATE, PIPELINE_RATE), pcm48: Vec::new(), lost_before_next: false };
    let mut meter = LevelMeter::new(PIPELINE_RATE as usize);
    let mut speech = SpeechFeed::new(ctx.clone(), ctx.engines.clone());
    let mut pcm16 = Vec::new();
    let mut reorder = Reorder::new(REORDER_DEPTH);
    let mut seconds: u64 = 0;
    // Clients may stop sending during silence (Opus DTX, a muted or vanished microphone); the speech pipeline
    // is then fed silence so that an open turn still ends.
    let mut last_packet = Instant::now();
    let mut silence_check = tokio::time::interval(SILENCE_FILL);
    let mut silence = SilenceWatch::default();
    silence_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let released = tokio::select! {
            // Packets first: after a stall, those waiting are taken before the silence check can run.
            biased;
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    last_packet = Instant::now();
                    ctx.metrics.rtp_in(true, packet.payload.len());
                    let released = reorder.push(packet.header.sequence_number, packet);
                    if released.is_empty() {
                        continue; // it waits for the packets before it
                    }
                    released
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => continue,
            },
            () = stop.cancelled() => break,
            done = speech.done() => {
                speech.handle(done).await;
                continue;
            }
            scheduled = silence_check.tick() => {
                match silence.check(last_packet.elapsed(), scheduled.elapsed(), !reorder.is_empty()) {
                    Silence::None => continue,
                    Silence::Late => {
                        ctx.metrics.silence_checks_late.inc();
                        continue;
                    }
                    // A pause in the stream: what waits behind a gap goes now.
                    Silence::Flush => reorder.flush(),
                    Silence::Fill => Vec::new(), // silence
                }
            }
        };
        pcm16.clear();
        if released.is_empty() {
            pcm16.resize(PIPELINE_RATE as usize * SILENCE_FILL.as_millis() as usize / 1000, 0.0);
        } else {
            audio.decode(released, &ctx, &copies, &mut pcm16);
        }
        speech.push(&pcm16);
        for level in meter.push(&pcm16) {
            seconds += 1;
            speech.level(level).await;
            let body = speech.metrics(level);
            ctx.recorder.sample(SampleKind::Speech, seconds * 1000, &body);
            ctx.events.send(body).await;
        }
    }
    // What still waits behind a gap is what the candidate said last.
    let tail = reorder.flush();
    if !tail.is_empty() {
        pcm16.clear();
        audio.decode(tail, &ctx, &copies, &mut pcm16);
        speech.push(&pcm16);
    }
    speech.flush().await;
}

/// What a silence check found.
#[derive(Debug, PartialEq)]
enum Silence {
    None,
    /// The check itself ran late: not a judgement on the sender.
    Late,
    /// Packets wait behind a gap that is not filling: release them.
    Flush,
    /// The sender is silent: feed the pipeline `SILENCE_FILL` of silence.
    Fill,
}

/// Tells a silent sender from this task's own stall. A check that runs late means the task was not running (a
/// starved runtime, a busy machine): the packets may be on their way behind it, and taking that stall for the
/// sender's silence would put silence in the middle of a word. One late check is skipped; a second in a row is
/// judged, so that on a machine late all the time a silent sender's turn still ends.
#[derive(Default)]
struct SilenceWatch {
    skipped: bool,
}

impl SilenceWatch {
    fn check(&mut self, since_packet: Duration, late_by: Duration, waiting: bool) -> Silence {
        let late = late_by >= SILENCE_FILL / 2 && !self.skipped;
        self.skipped = late;
        if late {
            Silence::Late
        } else if waiting && since_packet >= SILENCE_FILL {
            Silence::Flush
        } else if since_packet >= SILENCE_FILL * 2 {
            Silence::Fill
        } else {
            Silence::None
        }
    }
}

/// Opus packets, as the reorder buffer releases them, to 16 kHz audio.
struct AudioDecode {
    decoder: OpusDecoder,
    resampler: Resampler,
    pcm48: Vec<f32>,
    /// Packets were lost just before the next one released.
    lost_before_next: bool,
}

impl AudioDecode {
    /// Decodes each packet (rebuilding or concealing the lost ones) and copies it to observers and the recording; the audio
    /// goes to `pcm16`.
    fn decode(
        &mut self,
        released: Vec<Released<rtc::rtp::Packet>>,
        ctx: &SessionContext,
        copies: &broadcast::Sender<rtc::rtp::Packet>,
        pcm16: &mut Vec<f32>,
    ) {
        self.pcm48.clear();
        for item in released {
            match item {
                Released::Lost(n) => {
                    // The last of them is rebuilt from the next packet's redundancy, when it comes.
                    for _ in 1..n.min(MAX_CONCEALED_PACKETS) {
                        let _ = self.decoder.conceal(&mut self.pcm48);
                    }
                    self.lost_before_next = true;
                }
                Released::Packet(packet) => {
                    if std::mem::take(&mut self.lost_before_next) {
                        let _ = self.decoder.recover(&packet.payload, &mut self.pcm48);
                    }
                    if self.decoder.decode(&packet.payload, &mut self.pcm48).is_err() {
                        ctx.metrics.decode_errors.with_label_values(&["audio"]).inc();
                    }
                    let _ = copies.send(packet);
                }
            }
        }
        self.resampler.process(&self.pcm48, pcm16);
    }
}

enum Reassembler {
    Vp8(FrameAssembler<Vp8Packet>),
    H264(FrameAssembler<H264Depacketizer>),
}

impl Reassembler {
    fn new(codec: VideoCodec) -> Self {
        match codec {
            VideoCodec::Vp8 => Self::Vp8(FrameAssembler::new(Vp8Packet::default())),
            VideoCodec::H264 => Self::H264(FrameAssembler::new(H264Depacketizer::default())),
        }
    }

    /// The frames this packet completes, and how many frames were given up (lost for good).
    fn push(&mut self, packet: rtc::rtp::Packet) -> (Vec<bytes::Bytes>, u64) {
        match self {
            Self::Vp8(a) => (a.push(packet), a.take_lost()),
            Self::H264(a) => (a.push(packet), a.take_lost()),
        }
    }
}

/// A whole encoded camera frame and when it was complete on the session's clock (for recording).
#[derive(Clone)]
pub struct EncodedFrame {
    /// VP8, or H.264 in Annex B.
    pub data: bytes::Bytes,
    pub h264: bool,
    pub t_ms: u64,
}

pub async fn run_video(
    ctx: SessionContext,
    track: Arc<dyn TrackRemote>,
    copies: broadcast::Sender<rtc::rtp::Packet>,
    frame_copies: broadcast::Sender<EncodedFrame>,
) {
    let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
    let mime = track.codec(ssrc).await.map(|c| c.mime_type).unwrap_or_default();
    *ctx.video_mime.lock().unwrap_or_else(|p| p.into_inner()) = Some(mime.clone());
    let Some(codec) = VideoCodec::from_mime(&mime) else {
        tracing::warn!(%mime, "video codec not decodable; forwarding only");
        forward_only(&ctx, track, copies).await;
        return;
    };
    let request_keyframe = {
        let track = track.clone();
        move || {
            let track = track.clone();
            async move {
                let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
                let _ = track.write_rtcp(vec![Box::new(pli)]).await;
            }
        }
    };
    request_keyframe().await;

    let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, u64)>(VIDEO_QUEUE);
    let (decoded_tx, mut decoded_rx) = tokio::sync::mpsc::channel::<(DecodedFrame, u64)>(2);
    let metrics = ctx.metrics.clone();
    std::thread::Builder::new()
        .name("candor-video-decode".into())
        .spawn(move || decode_video(codec, frames_rx, decoded_tx, metrics))
        .expect("a thread can be spawned");

    let mut vision = VisionFeed::new(ctx.clone(), ctx.engines.clone());
    let mut reassembler = Reassembler::new(codec);
    let started = Instant::now();
    let mut window = (Instant::now(), 0_u32);
    let mut last_size = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = track.poll() => {
                let packet = match event {
                    Some(TrackRemoteEvent::OnRtpPacket(packet)) => packet,
                    Some(TrackRemoteEvent::OnEnded) | None => break,
                    Some(_) => continue,
                };
                ctx.metrics.rtp_in(false, packet.payload.len());
                let _ = copies.send(packet.clone());
                let (frames, lost) = reassembler.push(packet);
                if lost > 0 {
                    // Later frames refer to the lost one: only a keyframe lets decoding resume cleanly.
                    ctx.metrics.video_frames_dropped.inc_by(lost);
                    request_keyframe().await;
                }
                for frame in frames {
                    if frame_copies.receiver_count() > 0 {
                        let copy = EncodedFrame { data: frame.clone(), h264: codec == VideoCodec::H264, t_ms: ctx.events.t_ms() };
                        let _ = frame_copies.send(copy);
                    }
                    let t_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    if frames_tx.try_send((frame.to_vec(), t_ms)).is_err() {
                        // The decoder is behind: this frame is lost, so the next ones cannot be decoded either.
                        ctx.metrics.video_frames_dropped.inc();
                        request_keyframe().await;
                    }
                }
            }
            Some((frame, decoded)) = decoded_rx.recv() => {
                last_size = Some((frame.source_width, frame.source_height));
                window.1 += u32::try_from(decoded).unwrap_or(u32::MAX);
                vision.push(frame);
            }
            done = vision.done() => vision.handle(done),
            () = ctx.keyframe.notified() => request_keyframe().await,
            _ = ticker.tick() => {
                let Some(size) = last_size else { continue };
                let elapsed = window.0.elapsed().as_secs_f32().max(0.001);
                let fps = window.1 as f32 / elapsed;
                window = (Instant::now(), 0);
                vision.second(size, fps).await;
            }
        }
    }
}

/// The decoder thread: decodes every frame; hands on `(frame, frames decoded since the last one)` whenever the
/// analysis gate lets a frame through.
fn decode_video(
    codec: VideoCodec,
    frames: std::sync::mpsc::Receiver<(Vec<u8>, u64)>,
    decoded: tokio::sync::mpsc::Sender<(DecodedFrame, u64)>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut decoder = match VideoDecoder::new(codec, ANALYSIS_MAX_SIDE, ANALYSIS_INTERVAL_MS) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the video decoder");
            return;
        }
    };
    let mut reported = 0;
    while let Ok((data, t_ms)) = frames.recv() {
        match decoder.decode(&data, t_ms) {
            Ok(Some(frame)) => {
                let count = decoder.decoded - reported;
                reported = decoder.decoded;
                if decoded.blocking_send((frame, count)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(_) => metrics.decode_errors.with_label_values(&["video"]).inc(),
        }
    }
}

async fn forward_only(ctx: &SessionContext, track: Arc<dyn TrackRemote>, copies: broadcast::Sender<rtc::rtp::Packet>) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                ctx.metrics.rtp_in(false, packet.payload.len());
                let _ = copies.send(packet);
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_sender_silent_for_two_checks_is_filled_and_a_gap_with_packets_behind_it_is_flushed() {
        let mut watch = SilenceWatch::default();
        assert_eq!(watch.check(ms(100), ms(2), false), Silence::None);
        assert_eq!(watch.check(ms(250), ms(2), true), Silence::Flush);
        assert_eq!(watch.check(ms(250), ms(2), false), Silence::None);
        assert_eq!(watch.check(ms(450), ms(2), false), Silence::Fill);
        assert_eq!(watch.check(ms(650), ms(2), false), Silence::Fill);
    }

    #[test]
    fn a_check_that_runs_late_is_not_taken_for_the_senders_silence_once() {
        let mut watch = SilenceWatch::default();
        // The runtime stalled 600 ms: the last packet seems long ago, but the next may be waiting to be read.
        assert_eq!(watch.check(ms(600), ms(420), false), Silence::Late);
        assert_eq!(watch.check(ms(40), ms(3), false), Silence::None, "packets came: no silence was put in");
        // Late every time: the second late check in a row is judged, so a silent sender's turn still ends.
        assert_eq!(watch.check(ms(800), ms(150), false), Silence::Late);
        assert_eq!(watch.check(ms(1000), ms(150), false), Silence::Fill);
        assert_eq!(watch.check(ms(1200), ms(150), false), Silence::Late);
    }
}
