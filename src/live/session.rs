//! A candidate's live session: apply the offer and answer, then run until the interview ends, the client ends
//! it, the connection fails, or the server shuts it down. The session's driver task consumes the peer's events:
//! it trickles local candidates to signaling, starts the conversation once media flows, a task per inbound
//! track (up to `MAX_TRACKS`) and one for the `events` data channel. Its end happens once: the conversation
//! writes what was said and the report first, then the client is told and the peer closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use candor_signaling::events::SessionPhase;
use candor_signaling::limits::{MessageRate, RateVerdict};
use candor_signaling::{ClientEvent, EventBody, IceCandidate, Sdp};
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription, StatsSelector,
};

use super::conversation::{self, Conversation, Message};
use super::events::EventSink;
use super::peer::{PeerError, PeerEvent};
use super::recorder::Recorder;
use super::taping::{Feeds, Taping};
use super::voice::VoiceOut;
use super::{Claim, Live, media};
use crate::brain::Brain;
use candor_interviewer::Input;

/// The end reason of a session abandoned over REST: no report is written.
pub const ABANDONED: &str = "abandoned";
use crate::domain::{InterviewId, UserId};
use crate::metrics::Metrics;
use crate::store::Store;

/// How long a non-trickle answer waits for candidate gathering (host candidates take milliseconds; STUN
/// answers within a second or two).
const GATHERING_TIMEOUT: Duration = Duration::from_secs(5);
/// How often receiver statistics are read into the metrics.
const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// RTP packets an observer may lag behind before it misses some (about 2 s of video).
const FORWARD_BACKLOG: usize = 512;
/// Whole camera frames the recording may lag behind (about four seconds at 30 fps).
const FRAME_BACKLOG: usize = 128;
/// Inbound tracks a session takes (one audio, one video); more are ignored.
const MAX_TRACKS: usize = 2;
/// How long the end waits for the recording to seal its last chunk.
const TAPING_PATIENCE: Duration = Duration::from_secs(10);
/// How long the end waits for the client to acknowledge the last events before the connection closes.
const DRAIN_PATIENCE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Peer(#[from] PeerError),
    /// The remote description could not be applied: the client's offer is at fault.
    #[error("the offer was refused: {0}")]
    Negotiation(String),
    /// Anything else the WebRTC stack failed at (answer, tracks, candidates): the server's side.
    #[error("WebRTC: {0}")]
    Rtc(String),
    #[error("voice track: {0}")]
    Voice(#[from] candor_pipelines::voice::VoiceError),
}

impl From<webrtc::error::Error> for SessionError {
    fn from(e: webrtc::error::Error) -> Self {
        Self::Rtc(e.to_string())
    }
}

/// What media tasks need: where events go, counters, storage.
#[derive(Clone)]
pub struct SessionContext {
    pub interview: InterviewId,
    pub events: EventSink,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    /// Asks the inbound video task to send a keyframe request (a new observer needs one).
    pub keyframe: Arc<Notify>,
    /// The candidate's video codec once its track arrived, e.g. `video/VP8`.
    pub video_mime: Arc<std::sync::Mutex<Option<String>>>,
    pub engines: Arc<super::Engines>,
    /// The interviewer's voice on this session's audio track.
    pub voice: VoiceOut,
    /// Writes turns, samples and the interviewer's facts off the media paths.
    pub recorder: Recorder,
    /// The interviewer: where turns, controls and the voice's outcomes go.
    pub conversation: Conversation,
    /// The LLM brain, when one is configured.
    pub brain: Option<Arc<dyn Brain>>,
    /// Notification emails, when SMTP is configured.
    pub mailer: Option<Arc<crate::notify::Mailer>>,
    pub config: Arc<crate::config::Config>,
}

/// Copies of a session's media for observers and the recording: candidate audio and video RTP, interviewer
/// voice frames, the candidate's whole camera frames.
#[derive(Clone)]
pub struct Fanout {
    pub audio: broadcast::Sender<rtc::rtp::Packet>,
    pub video: broadcast::Sender<rtc::rtp::Packet>,
    pub voice: broadcast::Sender<Bytes>,
    pub frames: broadcast::Sender<media::EncodedFrame>,
}

pub struct Session {
    pub user: UserId,
    pub context: SessionContext,
    pub fanout: Fanout,
    pc: Arc<dyn PeerConnection>,
    live: Arc<Live>,
    cancel: CancellationToken,
    started: Instant,
    /// Media has flowed (the peer reached `connected` once).
    connected: AtomicBool,
    /// The first m-line's mid, put on local candidates (the stack leaves it empty; everything is bundled).
    first_mid: String,
    /// Set by the first `end`: later and concurrent calls do nothing.
    ending: AtomicBool,
    tracks: std::sync::atomic::AtomicUsize,
    /// Observers watching now (at most `observer::MAX_OBSERVERS`).
    pub(super) observers: std::sync::atomic::AtomicUsize,
    /// The recording task (it returns at once without the candidate's consent); the end waits for it.
    taping: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A started session, its answer, and its local candidates to trickle.
pub struct Started {
    pub session: Arc<Session>,
    pub answer: String,
    pub candidates: mpsc::UnboundedReceiver<IceCandidate>,
}

impl Session {
    /// Applies `offer`, answers, and starts the session's tasks. With `complete_answer` the answer waits for
    /// candidate gathering and carries every candidate (WHIP and non-trickle clients).
    pub async fn start(
        claim: Claim,
        offer: &Sdp,
        first_mid: Option<String>,
        complete_answer: bool,
    ) -> Result<Started, SessionError> {
        let live = claim.live.clone();
        let (pc, peer_events) = live.factory.create().await?;
        let started = Instant::now();
        let events = EventSink::new(started);
        let voice = VoiceOut::new(&claim.interview.to_string())?;
        let (conversation, messages) = Conversation::channel();
        let context = SessionContext {
            interview: claim.interview,
            events: events.clone(),
            metrics: live.metrics.clone(),
            store: live.store.clone(),
            keyframe: Arc::new(Notify::new()),
            video_mime: Arc::default(),
            engines: live.engines.clone(),
            voice: voice.clone(),
            recorder: Recorder::spawn(live.store.clone(), claim.interview, live.metrics.clone()),
            conversation,
            brain: live.brain.clone(),
            mailer: live.mailer.clone(),
            config: live.config.clone(),
        };
        let negotiated = async {
            let offer = RTCSessionDescription::offer(offer.as_str().to_string())
                .map_err(|e| SessionError::Negotiation(e.to_string()))?;
            pc.set_remote_description(offer).await.map_err(|e| SessionError::Negotiation(e.to_string()))?;
            let sender = pc.add_track(voice.track()).await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer.clone()).await?;
            let payload_type = sender
                .get_parameters()
                .await?
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS))
                .map_or(111, |c| c.payload_type);
            Ok::<_, SessionError>((answer.sdp, payload_type))
        };
        let (mut answer, payload_type) = match negotiated.await {
            Ok(result) => result,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };
        let fanout = Fanout {
            audio: broadcast::channel(FORWARD_BACKLOG).0,
            video: broadcast::channel(FORWARD_BACKLOG).0,
            voice: broadcast::channel(FORWARD_BACKLOG).0,
            frames: broadcast::channel(FRAME_BACKLOG).0,
        };
        let session = Arc::new(Session {
            user: claim.user,
            context,
            fanout: fanout.clone(),
            pc: pc.clone(),
            live: live.clone(),
            cancel: CancellationToken::new(),
            started,
            connected: AtomicBool::new(false),
            first_mid: first_mid.unwrap_or_else(|| "0".into()),
            ending: AtomicBool::new(false),
            tracks: Default::default(),
            observers: Default::default(),
            taping: Default::default(),
        });
        live.register(claim, session.clone());
        tokio::spawn(conversation::run(session.clone(), messages));
        live.metrics.rtc_peers.with_label_values(&["candidate"]).inc();
        tokio::spawn(voice.run(payload_type, fanout.voice.clone(), live.metrics.clone(), session.cancel.clone()));
        tokio::spawn(session.clone().watch_stats());
        let taping = Taping {
            interview: session.interview(),
            owner: session.user,
            store: live.store.clone(),
            recordings: live.recordings.clone(),
            events: session.context.events.clone(),
            metrics: live.metrics.clone(),
        };
        let feeds = Feeds { audio: fanout.audio.subscribe(), voice: fanout.voice.subscribe(), frames: fanout.frames.subscribe() };
        let recording = taping.run(feeds, session.cancel.clone());
        *session.taping.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::spawn(recording));

        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let (gathered_tx, gathered_rx) = oneshot::channel();
        tokio::spawn(session.clone().drive(peer_events, candidates_tx, gathered_tx));
        if complete_answer {
            let _ = tokio::time::timeout(GATHERING_TIMEOUT, gathered_rx).await;
            if let Some(description) = pc.local_description().await {
                answer = description.sdp;
            }
        }
        Ok(Started { session, answer: live.factory.client_sdp(answer), candidates })
    }

    pub fn interview(&self) -> InterviewId {
        self.context.interview
    }

    pub fn factory(&self) -> &super::PeerFactory {
        &self.live.factory
    }

    /// The candidate's video codec, VP8 until its track has arrived.
    pub fn video_mime(&self) -> String {
        let known = self.context.video_mime.lock().unwrap_or_else(|p| p.into_inner()).clone();
        known.unwrap_or_else(|| rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8.to_string())
    }

    pub fn request_keyframe(&self) {
        self.context.keyframe.notify_one();
    }

    /// Adds a trickled remote candidate.
    pub async fn add_remote_candidate(&self, candidate: &IceCandidate) -> Result<(), SessionError> {
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate.clone(),
            sdp_mid: candidate.sdp_mid.clone(),
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: candidate.username_fragment.clone(),
            ..Default::default()
        };
        self.pc.add_ice_candidate(init).await.map_err(SessionError::from)
    }

    /// Completes when the session has ended.
    pub async fn ended(&self) {
        self.cancel.cancelled().await;
    }

    pub fn is_ended(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Ends the session once: the conversation writes what was said and the report (none when `abandoned`),
    /// then the client is told, the peer closed (freeing its sockets and tasks) and the user's live slot
    /// released. Later and concurrent calls do nothing.
    pub async fn end(&self, reason: &str) {
        if self.ending.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(interview = %self.interview(), reason, "session ending");
        self.context.conversation.finish(reason == ABANDONED).await;
        self.context.events.send(EventBody::SessionState { state: SessionPhase::Ended, paused: None }).await;
        self.context.events.drain(DRAIN_PATIENCE).await;
        self.cancel.cancel();
        let taping = self.taping.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(taping) = taping
            && tokio::time::timeout(TAPING_PATIENCE, taping).await.is_err()
        {
            tracing::warn!(interview = %self.interview(), "the recording did not finish in time; its last chunk may be lost");
        }
        let _ = self.pc.close().await;
        self.live.release(self.user, self.interview());
        let metrics = &self.live.metrics;
        metrics.rtc_peers.with_label_values(&["candidate"]).dec();
        metrics.session_duration.observe(self.started.elapsed().as_secs_f64());
    }

    async fn drive(
        self: Arc<Self>,
        mut peer_events: mpsc::UnboundedReceiver<PeerEvent>,
        candidates: mpsc::UnboundedSender<IceCandidate>,
        gathered: oneshot::Sender<()>,
    ) {
        let mut gathered = Some(gathered);
        loop {
            let event = tokio::select! {
                event = peer_events.recv() => event,
                () = self.cancel.cancelled() => return,
            };
            let Some(event) = event else {
                self.end("peer_closed").await;
                return;
            };
            match event {
                PeerEvent::LocalCandidate(init) => {
                    let _ = candidates.send(self.live.factory.client_candidate(init, &self.first_mid));
                }
                PeerEvent::GatheringComplete => {
                    if let Some(done) = gathered.take() {
                        let _ = done.send(());
                    }
                    let end = IceCandidate {
                        candidate: String::new(),
                        sdp_mid: Some(self.first_mid.clone()),
                        sdp_m_line_index: Some(0),
                        username_fragment: None,
                    };
                    let _ = candidates.send(end);
                }
                PeerEvent::State(RTCPeerConnectionState::Connected) if !self.connected.swap(true, Ordering::SeqCst) => {
                    self.on_connected().await;
                }
                PeerEvent::State(RTCPeerConnectionState::Failed) => {
                    self.live.metrics.peer_failures.inc();
                    self.end("connection_failed").await;
                }
                PeerEvent::State(RTCPeerConnectionState::Closed) => self.end("connection_closed").await,
                PeerEvent::State(_) => {}
                PeerEvent::Track(track) => {
                    if self.tracks.fetch_add(1, Ordering::SeqCst) >= MAX_TRACKS {
                        tracing::warn!("extra inbound track ignored");
                        continue;
                    }
                    let ctx = self.context.clone();
                    if track.kind().await == RtpCodecKind::Audio {
                        tokio::spawn(media::run_audio(ctx, track, self.fanout.audio.clone()));
                    } else {
                        tokio::spawn(media::run_video(ctx, track, self.fanout.video.clone(), self.fanout.frames.clone()));
                    }
                }
                PeerEvent::DataChannel(channel) => {
                    if channel.label().await.is_ok_and(|label| label == "events") {
                        tokio::spawn(self.clone().serve_events(channel));
                    }
                }
            }
        }
    }

    /// Every few seconds, receiver statistics (loss, jitter) into the metrics.
    async fn watch_stats(self: Arc<Self>) {
        let mut lost_so_far: HashMap<u32, i64> = HashMap::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep(STATS_INTERVAL) => {},
                () = self.cancel.cancelled() => return,
            }
            let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
            for stream in report.inbound_rtp_streams() {
                let received = &stream.received_rtp_stream_stats;
                let kind = if received.rtp_stream_stats.kind == RtpCodecKind::Audio { "audio" } else { "video" };
                let before = lost_so_far.insert(received.rtp_stream_stats.ssrc, received.packets_lost).unwrap_or(0);
                let newly_lost = u64::try_from(received.packets_lost - before).unwrap_or(0);
                let metrics = &self.live.metrics;
                metrics.rtp_packets_lost.with_label_values(&[kind]).inc_by(newly_lost);
                metrics.rtp_jitter.with_label_values(&[kind]).observe(received.jitter);
            }
        }
    }

    async fn on_connected(&self) {
        match self.live.store.mark_interview_started(self.interview()).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "interview start not stored"),
        }
        self.context.conversation.send(Message::Input(Input::Connected)).await;
    }

    /// The `events` data channel: events go out through the sink; control messages come in.
    async fn serve_events(self: Arc<Self>, channel: Arc<dyn DataChannel>) {
        self.context.events.attach(channel.clone()).await;
        let connected = self.connected.load(Ordering::SeqCst);
        let state = if connected { SessionPhase::Interviewing } else { SessionPhase::Connecting };
        self.context.events.send(EventBody::SessionState { state, paused: None }).await;
        let mut rate = MessageRate::default();
        loop {
            let event = tokio::select! {
                event = channel.poll() => event,
                () = self.cancel.cancelled() => return,
            };
            match event {
                Some(DataChannelEvent::OnMessage(message)) => {
                    // A flood gets an error, then the session ends; other sessions never notice.
                    match rate.check(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)) {
                        RateVerdict::Allow => {}
                        RateVerdict::Refuse { tell: false } => continue,
                        RateVerdict::Refuse { tell: true } => {
                            let error = EventBody::Error { code: "rate_limited".into(), message: "too many messages; slow down".into() };
                            self.context.events.send(error).await;
                            continue;
                        }
                        RateVerdict::Close => {
                            tracing::warn!(interview = %self.interview(), "data-channel flood: session ended");
                            self.end("rate_limited").await;
                            return;
                        }
                    }
                    let text = String::from_utf8_lossy(&message.data);
                    self.handle_client_event(&text).await;
                }
                Some(DataChannelEvent::OnClose) | None => return,
                Some(_) => {}
            }
        }
    }

    /// Runs `work` (an utterance, a brain call) beside the session; it stops when the session ends.
    pub(super) fn beside(&self, work: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = work => {}
                () = cancel.cancelled() => {}
            }
        });
    }

    /// Controls and typed answers go to the conversation; refused messages get an `error` event.
    async fn handle_client_event(&self, text: &str) {
        let error = |code: &str, message: String| EventBody::Error { code: code.to_string(), message };
        let message = match ClientEvent::parse(text) {
            Ok(ClientEvent::Control(action)) => Message::Input(Input::Control(conversation::control(action))),
            Ok(ClientEvent::AnswerText(text)) => Message::Typed(text),
            Err(e) => return self.context.events.send(error(e.code(), e.to_string())).await,
        };
        if !self.context.conversation.offer(message) {
            let busy = error("busy", "the interviewer is behind; try again in a moment".into());
            self.context.events.send(busy).await;
        }
    }
}
