//! A candidate's live session: apply the offer and answer, then run until the interview ends, the client ends
//! it, or the server shuts it down. The session outlives its peer connection: when the candidate's connection
//! drops (a failed peer, a closed signaling socket) the session waits `rejoin_grace_secs` for them to rejoin on
//! a fresh one (`rejoin`), the interviewer holding, and ends with a report when they do not. Each peer has a
//! driver task that consumes its events: it trickles local candidates to signaling, starts the conversation
//! once media first flows, a task per inbound track (up to `MAX_TRACKS`) and one for the `events` data channel.
//! The end happens once: the conversation writes what was said and the report first, then the client is told
//! and the peer closed.

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
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
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
    /// A rejoin came after the session ended.
    #[error("the session has ended")]
    Ended,
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
    peer: std::sync::Mutex<Peer>,
    /// The current peer's generation, for signaling legs to learn that a rejoin replaced theirs.
    joined: watch::Sender<u64>,
    /// Held through a rejoin: one at a time, so each closes the peer before it (the voice track is bound to one
    /// peer at a time).
    rejoining: tokio::sync::Mutex<()>,
    live: Arc<Live>,
    cancel: CancellationToken,
    started: Instant,
    /// Media has flowed (a peer reached `connected` once): the interview has started.
    connected: AtomicBool,
    /// Set by the first `end` (or `interrupt`): later and concurrent calls do nothing.
    ending: AtomicBool,
    /// What signaling tells the client when the session is over: `session_ended`, `server_restarting`, ...
    closing: std::sync::OnceLock<&'static str>,
    /// Observers watching now (at most `observer::MAX_OBSERVERS`).
    pub(super) observers: std::sync::atomic::AtomicUsize,
    /// The recording task (it returns at once without the candidate's consent); the end waits for it.
    taping: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The candidate's current peer connection.
struct Peer {
    pc: Arc<dyn PeerConnection>,
    /// Counts the session's peers: events of a replaced peer are ignored.
    generation: u64,
    /// The first m-line's mid, put on local candidates (the stack leaves it empty; everything is bundled).
    first_mid: String,
    /// Inbound tracks taken from this peer.
    tracks: usize,
    /// The candidate is disconnected; cancelled when they rejoin.
    away: Option<CancellationToken>,
    /// Stops this peer's audio task, which then transcribes the open turn (`audio`, awaited when the server stops).
    stop_audio: CancellationToken,
    audio: Option<tokio::task::JoinHandle<()>>,
}

/// How long a stopping server waits for the audio already received to be transcribed.
const FLUSH_PATIENCE: Duration = Duration::from_secs(15);

/// A started session, its answer, and its local candidates to trickle.
pub struct Started {
    pub session: Arc<Session>,
    pub answer: String,
    pub candidates: mpsc::UnboundedReceiver<IceCandidate>,
    /// The peer's generation (0 for the first; see `Session::rejoin`).
    pub generation: u64,
}

/// Applies the offer to a new peer with the interviewer's voice track; the answer and the Opus payload type.
async fn negotiate(pc: &Arc<dyn PeerConnection>, offer: &Sdp, voice: &VoiceOut) -> Result<(String, u8), SessionError> {
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
    let result = negotiated.await;
    if result.is_err() {
        let _ = pc.close().await;
    }
    result
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
        let (answer, payload_type) = negotiate(&pc, offer, &voice).await?;
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
            peer: std::sync::Mutex::new(Peer {
                pc: pc.clone(),
                generation: 0,
                first_mid: first_mid.unwrap_or_else(|| "0".into()),
                tracks: 0,
                away: None,
                stop_audio: CancellationToken::new(),
                audio: None,
            }),
            joined: watch::channel(0).0,
            rejoining: tokio::sync::Mutex::new(()),
            live: live.clone(),
            cancel: CancellationToken::new(),
            started,
            connected: AtomicBool::new(false),
            ending: AtomicBool::new(false),
            closing: std::sync::OnceLock::new(),
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

        let (answer, candidates) = session.clone().drive_peer(pc, peer_events, 0, answer, complete_answer).await;
        Ok(Started { session, answer, candidates, generation: 0 })
    }

    /// The candidate joins again on a fresh connection (after a drop, or taking over from a connection still
    /// thought alive, as a reloaded page does): the old peer is closed, the interview goes on where it was, and
    /// everything (conversation, recording, observers, events not yet delivered) carries over.
    pub async fn rejoin(
        self: &Arc<Self>,
        offer: &Sdp,
        first_mid: Option<String>,
        complete_answer: bool,
    ) -> Result<Started, SessionError> {
        let _one_at_a_time = self.rejoining.lock().await;
        let current = self.peer().generation;
        self.hold(current, "rejoined").await;
        if self.ending.load(Ordering::SeqCst) {
            return Err(SessionError::Ended);
        }
        let (pc, peer_events) = self.live.factory.create().await?;
        // The old peer is closed, so the voice track binds to the new one alone. The voice keeps the Opus payload
        // type of the first offer: a browser numbers it the same every time.
        let (answer, _) = negotiate(&pc, offer, &self.context.voice).await?;
        let generation = {
            let mut peer = self.peer();
            if self.ending.load(Ordering::SeqCst) {
                drop(peer);
                let _ = pc.close().await;
                return Err(SessionError::Ended);
            }
            if let Some(away) = peer.away.take() {
                away.cancel();
            }
            peer.generation += 1;
            peer.pc = pc.clone();
            peer.first_mid = first_mid.unwrap_or_else(|| "0".into());
            peer.tracks = 0;
            peer.stop_audio = CancellationToken::new();
            peer.audio = None;
            peer.generation
        };
        self.joined.send_replace(generation);
        tracing::info!(interview = %self.interview(), generation, "candidate rejoined");
        self.live.metrics.rtc_peers.with_label_values(&["candidate"]).inc();
        self.live.metrics.session_connections.with_label_values(&["rejoined"]).inc();
        let (answer, candidates) = self.clone().drive_peer(pc, peer_events, generation, answer, complete_answer).await;
        Ok(Started { session: self.clone(), answer, candidates, generation })
    }

    /// Starts the driver of a negotiated peer; with `complete_answer` the answer waits for candidate gathering
    /// and carries every candidate (WHIP and non-trickle clients).
    async fn drive_peer(
        self: Arc<Self>,
        pc: Arc<dyn PeerConnection>,
        peer_events: mpsc::UnboundedReceiver<PeerEvent>,
        generation: u64,
        mut answer: String,
        complete_answer: bool,
    ) -> (String, mpsc::UnboundedReceiver<IceCandidate>) {
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let (gathered_tx, gathered_rx) = oneshot::channel();
        tokio::spawn(self.clone().drive(peer_events, candidates_tx, gathered_tx, generation));
        if complete_answer {
            let _ = tokio::time::timeout(GATHERING_TIMEOUT, gathered_rx).await;
            if let Some(description) = pc.local_description().await {
                answer = description.sdp;
            }
        }
        (self.live.factory.client_sdp(answer), candidates)
    }

    /// The candidate's connection of `generation` is gone (`reason`): with a grace period, and once the interview
    /// has started, the session waits for them to rejoin (the interviewer holds, the audio already received is
    /// still transcribed, events wait) and ends with a report when they do not (`connection_lost`); otherwise it
    /// ends now. A peer already replaced, or a session already waiting, changes nothing.
    pub async fn suspend(self: &Arc<Self>, generation: u64, reason: &'static str) {
        if self.live.config.rejoin_grace_secs == 0 || !self.connected.load(Ordering::SeqCst) {
            return self.end(reason).await;
        }
        self.hold(generation, reason).await;
    }

    /// Closes the peer of `generation` and waits for the candidate to rejoin, up to the grace period.
    async fn hold(self: &Arc<Self>, generation: u64, reason: &'static str) {
        let grace = Duration::from_secs(self.live.config.rejoin_grace_secs);
        let pc = {
            let mut peer = self.peer();
            if peer.generation != generation || peer.away.is_some() || self.ending.load(Ordering::SeqCst) {
                return;
            }
            let away = CancellationToken::new();
            peer.away = Some(away.clone());
            peer.stop_audio.cancel();
            let session = self.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(grace) => {
                        session.live.metrics.session_connections.with_label_values(&["expired"]).inc();
                        session.end("connection_lost").await;
                    }
                    () = away.cancelled() => {}
                    () = session.cancel.cancelled() => {}
                }
            });
            peer.pc.clone()
        };
        tracing::info!(interview = %self.interview(), reason, grace_secs = grace.as_secs(), "candidate disconnected; waiting for a rejoin");
        self.live.metrics.rtc_peers.with_label_values(&["candidate"]).dec();
        self.live.metrics.session_connections.with_label_values(&["dropped"]).inc();
        self.context.events.detach();
        self.context.conversation.send(Message::Input(Input::Disconnected)).await;
        let _ = pc.close().await;
    }

    fn peer(&self) -> std::sync::MutexGuard<'_, Peer> {
        self.peer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pc(&self) -> Arc<dyn PeerConnection> {
        self.peer().pc.clone()
    }

    /// The current peer's generation.
    pub fn generation(&self) -> u64 {
        self.peer().generation
    }

    /// Completes when a rejoin replaced the peer of `generation`.
    pub async fn replaced(&self, generation: u64) {
        let mut joined = self.joined.subscribe();
        let _ = joined.wait_for(|current| *current != generation).await;
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
        self.pc().add_ice_candidate(init).await.map_err(SessionError::from)
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
        let _ = self.closing.set("session_ended");
        self.context.conversation.finish(reason == ABANDONED).await;
        self.context.events.send(EventBody::SessionState { state: SessionPhase::Ended, paused: None }).await;
        self.context.events.drain(DRAIN_PATIENCE).await;
        self.close().await;
    }

    /// The server is stopping: the interview does not end. Everything said so far and where the interview
    /// stands are stored, and signaling tells the client `reason` (`server_restarting` or `server_draining`);
    /// the candidate joins again and the interview resumes at the same question.
    pub async fn interrupt(&self, reason: &'static str) {
        if self.ending.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(interview = %self.interview(), reason, "session interrupted by the server stopping");
        let _ = self.closing.set(reason);
        // The interviewer holds as for a dropped connection, and the answer in progress is transcribed first, so
        // that it is in what the conversation stores (unjudged: the candidate goes on with it after the restart).
        self.context.conversation.send(Message::Input(Input::Disconnected)).await;
        let audio = {
            let mut peer = self.peer();
            peer.stop_audio.cancel();
            peer.audio.take()
        };
        if let Some(audio) = audio {
            let _ = tokio::time::timeout(FLUSH_PATIENCE, audio).await;
        }
        self.context.conversation.interrupt().await;
        self.close().await;
    }

    /// Why signaling should say the session is over.
    pub fn closing_reason(&self) -> &'static str {
        self.closing.get().copied().unwrap_or("session_ended")
    }

    /// Stops the session's tasks, seals the recording, closes the peer and frees the user's place.
    async fn close(&self) {
        self.cancel.cancel();
        let taping = self.taping.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(taping) = taping
            && tokio::time::timeout(TAPING_PATIENCE, taping).await.is_err()
        {
            tracing::warn!(interview = %self.interview(), "the recording did not finish in time; its last chunk may be lost");
        }
        let away = self.peer().away.take().is_some();
        let _ = self.pc().close().await;
        self.live.release(self.user, self.interview());
        let metrics = &self.live.metrics;
        if !away {
            metrics.rtc_peers.with_label_values(&["candidate"]).dec();
        }
        metrics.session_duration.observe(self.started.elapsed().as_secs_f64());
    }

    async fn drive(
        self: Arc<Self>,
        mut peer_events: mpsc::UnboundedReceiver<PeerEvent>,
        candidates: mpsc::UnboundedSender<IceCandidate>,
        gathered: oneshot::Sender<()>,
        generation: u64,
    ) {
        let mut gathered = Some(gathered);
        loop {
            let event = tokio::select! {
                event = peer_events.recv() => event,
                () = self.cancel.cancelled() => return,
            };
            let Some(event) = event else {
                self.suspend(generation, "peer_closed").await;
                return;
            };
            if self.peer().generation != generation {
                return;
            }
            match event {
                PeerEvent::LocalCandidate(init) => {
                    let first_mid = self.peer().first_mid.clone();
                    let _ = candidates.send(self.live.factory.client_candidate(init, &first_mid));
                }
                PeerEvent::GatheringComplete => {
                    if let Some(done) = gathered.take() {
                        let _ = done.send(());
                    }
                    let end = IceCandidate {
                        candidate: String::new(),
                        sdp_mid: Some(self.peer().first_mid.clone()),
                        sdp_m_line_index: Some(0),
                        username_fragment: None,
                    };
                    let _ = candidates.send(end);
                }
                PeerEvent::State(RTCPeerConnectionState::Connected) => {
                    if !self.connected.swap(true, Ordering::SeqCst) {
                        self.on_connected().await;
                    } else if generation > 0 {
                        self.context.conversation.send(Message::Input(Input::Reconnected)).await;
                    }
                }
                PeerEvent::State(RTCPeerConnectionState::Failed) => {
                    self.live.metrics.peer_failures.inc();
                    self.suspend(generation, "connection_failed").await;
                }
                PeerEvent::State(RTCPeerConnectionState::Closed) => self.suspend(generation, "connection_closed").await,
                PeerEvent::State(_) => {}
                PeerEvent::Track(track) => {
                    let taken = {
                        let mut peer = self.peer();
                        peer.tracks += 1;
                        peer.tracks
                    };
                    if taken > MAX_TRACKS {
                        tracing::warn!("extra inbound track ignored");
                        continue;
                    }
                    let ctx = self.context.clone();
                    if track.kind().await == RtpCodecKind::Audio {
                        let stop = self.peer().stop_audio.clone();
                        let audio = tokio::spawn(media::run_audio(ctx, track, self.fanout.audio.clone(), stop));
                        self.peer().audio = Some(audio);
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
            let report = self.pc().get_stats(Instant::now(), StatsSelector::None).await;
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
