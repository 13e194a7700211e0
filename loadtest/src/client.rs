//! `Client`: one synthetic participant. It signals over the v1 WebSocket (trickle ICE, or a complete offer),
//! sends paced Opus audio and VP8 video once connected (candidates), and records the server's signaling
//! messages, data-channel events and inbound media.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use candor_pipelines::audio::OpusDecoder;
use candor_pipelines::voice::VoicePacer;
use candor_signaling::{ClientMessage, IceCandidate, Sdp, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, Registry, register_default_interceptors,
};

use crate::latency::{Onsets, voice_ends_ms};
use crate::media::{Camera, CameraCodec, MediaError};

const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 96;
const H264_PT: u8 = 102;
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Candidate,
    Observer,
}

pub struct Options {
    /// The server's HTTP address.
    pub server: SocketAddr,
    pub interview_id: String,
    pub access_token: String,
    pub role: Role,
    /// Mono PCM and its rate, sent once as the candidate's microphone.
    pub audio: Option<(Vec<f32>, u32)>,
    /// The synthetic camera: codec, width, height and frame rate.
    pub video: Option<(CameraCodec, u32, u32, u32)>,
    /// A still RGB24 picture of the camera's size for it to show instead of its moving test pattern.
    pub picture: Option<Vec<u8>>,
    /// Trickle candidates (browsers) or put them all in the offer (non-trickle clients).
    pub trickle: bool,
    /// Signal with WHIP (one HTTP POST, complete offer) instead of the WebSocket.
    pub whip: bool,
    /// Send this many 20 ms "Opus" packets of random bytes before any real audio (garbage RTP payloads).
    pub garbage_audio_packets: u32,
    /// A bad network between this client and the server (loss, jitter, blackouts), both ways.
    pub impairment: Option<crate::impair::Impairment>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("webrtc: {0}")]
    Webrtc(#[from] webrtc::error::Error),
    #[error("media: {0}")]
    Media(#[from] MediaError),
    #[error("WHIP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("WHIP refused the offer: {status} {body}")]
    WhipRefused { status: u16, body: String },
}

/// Media received from the server.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    pub audio_packets: u64,
    pub video_packets: u64,
    /// Remote tracks that delivered at least one packet.
    pub tracks: u32,
    /// 48 kHz mono PCM decoded from the first audio track (the interviewer's voice).
    pub first_audio_pcm: Vec<f32>,
    /// When the interviewer's voice started, each time after a gap.
    pub voice_onsets: Vec<Instant>,
    /// When the candidate's voice ended, each time, as sent.
    pub voice_ends: Vec<Instant>,
}

impl Inbound {
    /// For each of the candidate's turns that got a reply, the wait until the interviewer's voice.
    pub fn voice_to_voice(&self) -> Vec<Duration> {
        crate::latency::voice_to_voice(&self.voice_ends, &self.voice_onsets)
    }
}

#[derive(Default)]
struct Recorded {
    events: Mutex<Vec<Value>>,
    signals: Mutex<Vec<ServerMessage>>,
    inbound: Mutex<Inbound>,
    connected: AtomicBool,
    changed: Notify,
}

impl Recorded {
    fn touch(&self) {
        self.changed.notify_waiters();
    }
}

/// Speech for the microphone: PCM, its rate, and who to tell once it has been sent.
type Speech = (Vec<f32>, u32, Option<oneshot::Sender<()>>);

pub struct Client {
    pc: Arc<dyn PeerConnection>,
    /// The microphone's queue: what `say` adds is sent after what is already queued.
    microphone: mpsc::UnboundedSender<Speech>,
    ws_out: mpsc::UnboundedSender<Message>,
    recorded: Arc<Recorded>,
    channel: Arc<dyn DataChannel>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Handler {
    recorded: Arc<Recorded>,
    ws_out: mpsc::UnboundedSender<Message>,
    trickle: bool,
    gathered: Arc<Notify>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if self.trickle
            && let Ok(init) = event.candidate.to_json()
        {
            let candidate = IceCandidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid.filter(|m| !m.is_empty()).or(Some("0".into())),
                sdp_m_line_index: init.sdp_mline_index.or(Some(0)),
                username_fragment: None,
            };
            let _ = self.ws_out.send(Message::Text(ClientMessage::Candidate(candidate).to_json().into()));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.recorded.connected.store(true, Ordering::SeqCst);
            self.recorded.touch();
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        tokio::spawn(read_track(track, self.recorded.clone()));
    }
}

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec { mime_type: mime.into(), clock_rate, channels, sdp_fmtp_line: fmtp.into(), rtcp_feedback: vec![] }
}

fn local_track(kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32) -> Result<Arc<TrackLocalStaticSample>, ClientError> {
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
        codec,
        ..Default::default()
    };
    let id = format!("{kind}-{ssrc}");
    let track = MediaStreamTrack::new("loadtest".into(), id.clone(), id, kind, vec![encoding]);
    Ok(Arc::new(TrackLocalStaticSample::new(Instant::now(), track)?))
}

impl Client {
    /// Connects, negotiates and starts sending media once the peer is connected.
    pub async fn connect(options: Options) -> Result<Self, ClientError> {
        let role = match options.role {
            Role::Candidate => "candidate",
            Role::Observer => "observer",
        };
        let url = format!(
            "ws://{}/api/v1/interviews/{}/rtc?access_token={}&role={role}",
            options.server, options.interview_id, options.access_token
        );
        let (ws_out, mut ws_out_rx) = mpsc::unbounded_channel::<Message>();
        let mut tasks = Vec::new();
        let mut stream = None;
        if !options.whip {
            let (socket, _) = tokio_tungstenite::connect_async(url).await?;
            let (mut sink, incoming) = socket.split();
            stream = Some(incoming);
            tasks.push(tokio::spawn(async move {
                while let Some(message) = ws_out_rx.recv().await {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
            }));
        }
        let trickle = options.trickle && !options.whip;

        let recorded = Arc::new(Recorded::default());
        let gathered = Arc::new(Notify::new());
        let mut media = MediaEngine::default();
        let opus = codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1");
        let vp8 = codec(MIME_TYPE_VP8, 90_000, 0, "");
        media.register_codec(
            RTCRtpCodecParameters { rtp_codec: opus.clone(), payload_type: OPUS_PT },
            RtpCodecKind::Audio,
        )?;
        let h264 = codec(MIME_TYPE_H264, 90_000, 0, H264_FMTP);
        // Only the camera's codec is offered for video, so the server cannot pick another.
        let (video_codec, video_pt) = match options.video.map(|(c, ..)| c) {
            Some(CameraCodec::H264) => (h264.clone(), H264_PT),
            _ => (vp8.clone(), VP8_PT),
        };
        media.register_codec(
            RTCRtpCodecParameters { rtp_codec: video_codec, payload_type: video_pt },
            RtpCodecKind::Video,
        )?;
        let interceptors = register_default_interceptors(Registry::new(), &mut media)?;
        let handler =
            Handler { recorded: recorded.clone(), ws_out: ws_out.clone(), trickle, gathered: gathered.clone() };
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_handler(Arc::new(handler))
            .with_udp_addrs(vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
        // A browser on a lossy link sends Opus with in-band redundancy sized for the loss it hears of (RTCP);
        // this client knows its loss and sets it from the start.
        let loss_percent = options.impairment.as_ref().map_or(0, |i| (i.loss * 100.0).round().clamp(0.0, 100.0) as u8);
        if let Some(runtime) = options.impairment.and_then(crate::impair::Impairment::runtime) {
            builder = builder.with_runtime(runtime);
        }
        let pc: Arc<dyn PeerConnection> = Arc::new(builder.build().await?);

        let mut audio_track = None;
        let mut video_track = None;
        match options.role {
            Role::Candidate => {
                let track = local_track(RtpCodecKind::Audio, opus, 0x1000_0001)?;
                pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
                audio_track = Some(track);
                if let Some((camera, ..)) = options.video {
                    let codec = if camera == CameraCodec::H264 { h264 } else { vp8 };
                    let track = local_track(RtpCodecKind::Video, codec, 0x1000_0002)?;
                    pc.add_track(track.clone() as Arc<dyn TrackLocal>).await?;
                    video_track = Some(track);
                }
            }
            Role::Observer => {
                let receive = || {
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    })
                };
                pc.add_transceiver_from_kind(RtpCodecKind::Audio, receive()).await?;
                pc.add_transceiver_from_kind(RtpCodecKind::Audio, receive()).await?;
                pc.add_transceiver_from_kind(RtpCodecKind::Video, receive()).await?;
            }
        }
        let channel = pc.create_data_channel("events", None).await?;
        tasks.push(tokio::spawn(read_events(channel.clone(), recorded.clone())));

        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        let mut sdp = offer.sdp;
        if !trickle {
            let _ = tokio::time::timeout(Duration::from_secs(5), gathered.notified()).await;
            if let Some(description) = pc.local_description().await {
                sdp = description.sdp;
            }
        }
        let whip_url = format!("http://{}/api/v1/interviews/{}/whip", options.server, options.interview_id);
        if options.whip {
            let response = reqwest::Client::new()
                .post(&whip_url)
                .bearer_auth(&options.access_token)
                .header("content-type", "application/sdp")
                .body(sdp)
                .send()
                .await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            if status != 201 {
                let _ = pc.close().await;
                return Err(ClientError::WhipRefused { status, body });
            }
            pc.set_remote_description(RTCSessionDescription::answer(body)?).await?;
        } else {
            let offer = Sdp::parse(&sdp).expect("webrtc-rs makes valid offers");
            let _ = ws_out.send(Message::Text(ClientMessage::Offer(offer).to_json().into()));
        }

        let reader_pc = pc.clone();
        let reader_recorded = recorded.clone();
        tasks.push(tokio::spawn(async move {
            let Some(mut stream) = stream else { return };
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(signal) = serde_json::from_str::<ServerMessage>(&text) else { continue };
                match &signal {
                    ServerMessage::Answer { sdp } => {
                        if let Ok(answer) = RTCSessionDescription::answer(sdp.clone()) {
                            let _ = reader_pc.set_remote_description(answer).await;
                        }
                    }
                    ServerMessage::Candidate { candidate } if !candidate.candidate.is_empty() => {
                        let init = RTCIceCandidateInit {
                            candidate: candidate.candidate.clone(),
                            sdp_mid: candidate.sdp_mid.clone(),
                            sdp_mline_index: candidate.sdp_m_line_index,
                            ..Default::default()
                        };
                        let _ = reader_pc.add_ice_candidate(init).await;
                    }
                    _ => {}
                }
                reader_recorded.signals.lock().expect("not poisoned").push(signal);
                reader_recorded.touch();
            }
        }));

        let (microphone, speech) = mpsc::unbounded_channel::<Speech>();
        if let Some((pcm, rate)) = options.audio.clone() {
            let _ = microphone.send((pcm, rate, None));
        }
        if let Some(track) = audio_track {
            let garbage = options.garbage_audio_packets;
            tasks.push(tokio::spawn(send_audio(track, garbage, loss_percent, speech, recorded.clone())));
        }
        if let (Some(track), Some((codec, w, h, fps))) = (video_track, options.video) {
            let mut camera = Camera::new(codec, w, h, fps)?;
            if let Some(picture) = &options.picture {
                camera.show(picture);
            }
            let payload_type = if codec == CameraCodec::H264 { H264_PT } else { VP8_PT };
            tasks.push(tokio::spawn(send_video(track, camera, payload_type, recorded.clone())));
        }
        Ok(Self { pc, microphone, ws_out, recorded, channel, tasks })
    }

    /// Speaks into the microphone after whatever is queued; returns once the last frame has been sent. Between
    /// utterances the microphone sends nothing, as a muted or DTX microphone does.
    pub async fn say(&self, pcm: Vec<f32>, rate: u32) {
        let (done, sent) = oneshot::channel();
        if self.microphone.send((pcm, rate, Some(done))).is_ok() {
            let _ = sent.await;
        }
    }

    pub fn events(&self) -> Vec<Value> {
        self.recorded.events.lock().expect("not poisoned").clone()
    }

    pub fn signals(&self) -> Vec<ServerMessage> {
        self.recorded.signals.lock().expect("not poisoned").clone()
    }

    pub fn inbound(&self) -> Inbound {
        self.recorded.inbound.lock().expect("not poisoned").clone()
    }

    pub fn is_connected(&self) -> bool {
        self.recorded.connected.load(Ordering::SeqCst)
    }

    /// Waits until `check` holds or `timeout` passes; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, check: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.recorded.changed.notified();
            if check(self) {
                return true;
            }
            // Also re-check periodically: some conditions (e.g. media counts) change without a notification.
            let wake = tokio::time::Instant::now() + Duration::from_millis(100);
            if tokio::time::timeout_at(wake.min(deadline), changed).await.is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return check(self);
            }
        }
    }

    /// Sends a raw text frame on the signaling socket (for testing bad input).
    pub fn send_signal(&self, text: &str) {
        let _ = self.ws_out.send(Message::Text(text.to_string().into()));
    }

    /// Sends a raw text message on the `events` data channel.
    pub async fn send_event(&self, text: &str) -> Result<(), ClientError> {
        self.channel.send_text(text).await?;
        Ok(())
    }

    /// Ends politely: `{"type":"end"}`, then closes.
    pub async fn end(self) {
        self.send_signal(&ClientMessage::End.to_json());
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.close().await;
    }

    /// Disappears without a word: closes the peer and the socket abruptly.
    pub async fn vanish(self) {
        self.close().await;
    }

    async fn close(self) {
        let _ = self.pc.close().await;
        for task in self.tasks {
            task.abort();
        }
    }
}

async fn read_events(channel: Arc<dyn DataChannel>, recorded: Arc<Recorded>) {
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnMessage(message) => {
                if let Ok(value) = serde_json::from_slice::<Value>(&message.data) {
                    recorded.events.lock().expect("not poisoned").push(value);
                    recorded.touch();
                }
            }
            DataChannelEvent::OnClose => return,
            _ => {}
        }
    }
}

async fn read_track(track: Arc<dyn TrackRemote>, recorded: Arc<Recorded>) {
    let audio = track.kind().await == RtpCodecKind::Audio;
    let first_audio = audio && {
        let mut inbound = recorded.inbound.lock().expect("not poisoned");
        inbound.tracks += 1;
        inbound.audio_packets == 0
    };
    if !audio {
        recorded.inbound.lock().expect("not poisoned").tracks += 1;
    }
    let mut decoder = OpusDecoder::new().ok().filter(|_| first_audio);
    let mut pcm = Vec::new();
    let mut onsets = Onsets::default();
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        pcm.clear();
        if let Some(decoder) = &mut decoder {
            let _ = decoder.decode(&packet.payload, &mut pcm);
        }
        let mut inbound = recorded.inbound.lock().expect("not poisoned");
        if audio {
            inbound.audio_packets += 1;
        } else {
            inbound.video_packets += 1;
        }
        inbound.first_audio_pcm.extend_from_slice(&pcm);
        if decoder.is_some() {
            let now = Instant::now();
            if onsets.frame(&pcm, now) {
                inbound.voice_onsets.push(now);
            }
        }
    }
}

async fn wait_connected(recorded: &Recorded) {
    while !recorded.connected.load(Ordering::SeqCst) {
        let changed = recorded.changed.notified();
        let _ = tokio::time::timeout(Duration::from_millis(50), changed).await;
    }
}

async fn send_audio(
    track: Arc<TrackLocalStaticSample>,
    garbage: u32,
    loss_percent: u8,
    mut speech: mpsc::UnboundedReceiver<Speech>,
    recorded: Arc<Recorded>,
) {
    wait_connected(&recorded).await;
    // Random bytes from a fixed-seed generator (xorshift), so a failing run can be repeated exactly.
    let mut state: u32 = 0x9e37_79b9;
    for _ in 0..garbage {
        let payload: Vec<u8> = (0..60)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let sample = rtc::media::Sample {
            data: Bytes::from(payload),
            duration: Duration::from_millis(20),
            ..rtc::media::Sample::new(Instant::now())
        };
        if track.write_sample(0x1000_0001, OPUS_PT, &sample, &[]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some((pcm, rate, done)) = speech.recv().await {
        let Ok(mut pacer) = VoicePacer::new() else { return };
        if pacer.protect_against_loss(loss_percent).is_err() {
            return;
        }
        // A long recording is fed in pieces so the queue bound is never reached.
        let chunk = rate as usize * 10;
        let started = Instant::now();
        // Where the voice ends, noted when the frame holding that moment goes out: a busy machine sends late,
        // and the pacer does not make up lost time.
        let mut ends = voice_ends_ms(&pcm, rate).into_iter().peekable();
        let mut sent_ms = 0;
        let pieces = pcm.len().div_ceil(chunk);
        for (index, piece) in pcm.chunks(chunk).enumerate() {
            if pacer.push_pcm(piece, rate).is_err() {
                return;
            }
            if index + 1 == pieces {
                let _ = pacer.finish();
            }
            while let Some(due) = pacer.poll_timeout() {
                let now = started.elapsed().as_millis() as u64;
                if due > now {
                    tokio::time::sleep(Duration::from_millis(due - now)).await;
                }
                let Some(frame) = pacer.poll_frame(started.elapsed().as_millis() as u64) else { continue };
                let sample = rtc::media::Sample {
                    data: Bytes::from(frame),
                    duration: Duration::from_millis(20),
                    ..rtc::media::Sample::new(Instant::now())
                };
                if track.write_sample(0x1000_0001, OPUS_PT, &sample, &[]).await.is_err() {
                    return;
                }
                sent_ms += VoicePacer::FRAME_MS;
                while ends.next_if(|end| *end <= sent_ms).is_some() {
                    recorded.inbound.lock().expect("not poisoned").voice_ends.push(Instant::now());
                }
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

async fn send_video(track: Arc<TrackLocalStaticSample>, camera: Camera, payload_type: u8, recorded: Arc<Recorded>) {
    wait_connected(&recorded).await;
    let interval = Duration::from_secs(1) / camera.fps;
    let camera = Arc::new(Mutex::new(camera));
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let camera = camera.clone();
        let frames = tokio::task::spawn_blocking(move || camera.lock().expect("not poisoned").next_frame()).await;
        let Ok(Ok(frames)) = frames else { return };
        for frame in frames {
            let sample = rtc::media::Sample {
                data: Bytes::from(frame),
                duration: interval,
                ..rtc::media::Sample::new(Instant::now())
            };
            if track.write_sample(0x1000_0002, payload_type, &sample, &[]).await.is_err() {
                return;
            }
        }
    }
}
