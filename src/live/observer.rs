//! Observers (the SFU part): a coach or admin joins a live session with a receive-only peer. The candidate's
//! audio and video RTP are forwarded without transcoding (new SSRC and payload type per leg), the interviewer's
//! voice frames are re-sent, and every event is copied to the observer's `events` channel. An observer that
//! lags loses packets, never slows the candidate; one that leaves changes nothing for the candidate.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use candor_signaling::{IceCandidate, OfferSummary, Sdp};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription};
use webrtc::rtp_transceiver::RtpSender;

use super::leg::{Leg, Next};
use super::peer::{PeerEvent, codec};
use super::session::{Session, SessionError};
use super::voice::rand_ssrc;
use crate::domain::UserId;
use crate::metrics::Metrics;

fn encoding(mime: &str, clock_rate: u32, channels: u16) -> (u32, RTCRtpEncodingParameters) {
    let ssrc = rand_ssrc();
    let encoding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
        codec: codec(mime, clock_rate, channels, "", 0).rtp_codec,
        ..Default::default()
    };
    (ssrc, encoding)
}

async fn payload_type(sender: &Arc<dyn RtpSender>, mime: &str) -> Option<u8> {
    let parameters = sender.get_parameters().await.ok()?;
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
}

/// Forwards RTP copies into `track`, rewriting SSRC and payload type for this leg.
async fn forward_rtp(
    mut copies: broadcast::Receiver<rtc::rtp::Packet>,
    track: Arc<TrackLocalStaticRTP>,
    (ssrc, pt): (u32, u8),
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let audio = track.kind().await == RtpCodecKind::Audio;
    loop {
        let packet = tokio::select! {
            packet = copies.recv() => packet,
            () = cancel.cancelled() => return,
        };
        let mut packet = match packet {
            Ok(packet) => packet,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        packet.header.ssrc = ssrc;
        packet.header.payload_type = pt;
        // Header-extension ids are negotiated per leg; the candidate's would mean something else here.
        packet.header.extension = false;
        packet.header.extensions.clear();
        let bytes = packet.payload.len();
        if track.write_rtp(packet).await.is_err() {
            return;
        }
        metrics.rtp_out(audio, bytes);
    }
}

async fn forward_voice(
    mut frames: broadcast::Receiver<Bytes>,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    pt: u8,
    cancel: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            frame = frames.recv() => frame,
            () = cancel.cancelled() => return,
        };
        let data = match frame {
            Ok(data) => data,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let sample =
            rtc::media::Sample { data, duration: Duration::from_millis(20), ..rtc::media::Sample::new(Instant::now()) };
        if track.write_sample(ssrc, pt, &sample, &[]).await.is_err() {
            return;
        }
    }
}

async fn forward_events(
    channel: Arc<dyn DataChannel>,
    mut events: broadcast::Receiver<Arc<str>>,
    cancel: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            event = channel.poll() => match event {
                Some(DataChannelEvent::OnClose) | None => return,
                _ => continue,
            },
            () = cancel.cancelled() => return,
        };
        match event {
            Ok(text) => {
                if channel.send_text(&text).await.is_err() {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
}

struct ObserverPeer {
    pc: Arc<dyn PeerConnection>,
    cancel: CancellationToken,
}

impl ObserverPeer {
    async fn start(
        session: &Arc<Session>,
        offer: &Sdp,
    ) -> Result<(Self, String, mpsc::UnboundedReceiver<PeerEvent>), SessionError> {
        let (pc, events) = session.factory().create().await?;
        let cancel = CancellationToken::new();
        let stream = format!("observe-{}", session.interview());
        let (audio_ssrc, audio_enc) = encoding(MIME_TYPE_OPUS, 48_000, 2);
        let (voice_ssrc, voice_enc) = encoding(MIME_TYPE_OPUS, 48_000, 2);
        let video_mime = session.video_mime();
        let (video_ssrc, video_enc) = encoding(&video_mime, 90_000, 0);
        let track = |id: &str, kind, enc| MediaStreamTrack::new(stream.clone(), id.into(), id.into(), kind, vec![enc]);
        let audio = Arc::new(TrackLocalStaticRTP::new(track("candidate-audio", RtpCodecKind::Audio, audio_enc)));
        let voice = Arc::new(TrackLocalStaticSample::new(
            Instant::now(),
            track("interviewer-voice", RtpCodecKind::Audio, voice_enc),
        )?);
        let video = Arc::new(TrackLocalStaticRTP::new(track("candidate-video", RtpCodecKind::Video, video_enc)));

        let negotiated =
            Self::negotiate(&pc, offer, [audio.clone() as Arc<dyn TrackLocal>, voice.clone(), video.clone()]).await;
        let (answer, [audio_sender, voice_sender, video_sender]) = match negotiated {
            Ok(result) => result,
            Err(e) => {
                let _ = pc.close().await;
                return Err(e);
            }
        };

        let fanout = &session.fanout;
        let metrics = &session.context.metrics;
        if let Some(pt) = payload_type(&audio_sender, MIME_TYPE_OPUS).await {
            tokio::spawn(forward_rtp(
                fanout.audio.subscribe(),
                audio,
                (audio_ssrc, pt),
                metrics.clone(),
                cancel.clone(),
            ));
        }
        if let Some(pt) = payload_type(&voice_sender, MIME_TYPE_OPUS).await {
            tokio::spawn(forward_voice(fanout.voice.subscribe(), voice, voice_ssrc, pt, cancel.clone()));
        }
        if let Some(pt) = payload_type(&video_sender, &video_mime).await {
            tokio::spawn(forward_rtp(
                fanout.video.subscribe(),
                video,
                (video_ssrc, pt),
                metrics.clone(),
                cancel.clone(),
            ));
            // A new viewer can only start decoding at a keyframe.
            session.request_keyframe();
        }
        Ok((Self { pc, cancel }, session.factory().client_sdp(answer), events))
    }

    /// Offer in, the three forwarding tracks attached to the offered transceivers, answer out.
    async fn negotiate(
        pc: &Arc<dyn PeerConnection>,
        offer: &Sdp,
        tracks: [Arc<dyn TrackLocal>; 3],
    ) -> Result<(String, [Arc<dyn RtpSender>; 3]), SessionError> {
        pc.set_remote_description(RTCSessionDescription::offer(offer.as_str().to_string())?).await?;
        let mut senders = Vec::with_capacity(3);
        for track in tracks {
            senders.push(pc.add_track(track).await?);
        }
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer.clone()).await?;
        let senders: [Arc<dyn RtpSender>; 3] =
            senders.try_into().unwrap_or_else(|_| unreachable!("three tracks were added"));
        Ok((answer.sdp, senders))
    }

    async fn close(&self) {
        self.cancel.cancel();
        let _ = self.pc.close().await;
    }
}

/// Observers one session takes at once; more are refused (`too_many_observers`).
pub const MAX_OBSERVERS: usize = 8;

/// An observer's leg: one offer gives a receive-only peer fed from the session's copies; it ends when the
/// session does or its connection fails.
pub struct ObserverLeg {
    user: UserId,
    session: Arc<Session>,
    peer: Option<ObserverPeer>,
    events: Option<mpsc::UnboundedReceiver<PeerEvent>>,
}

impl ObserverLeg {
    /// Joins `session`; `None` when it already has `MAX_OBSERVERS`.
    pub fn join(user: UserId, session: Arc<Session>) -> Option<Self> {
        let joined = session.observers.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < MAX_OBSERVERS).then_some(n + 1));
        joined.ok()?;
        tracing::info!(interview = %session.interview(), observer = %user, "observer joined");
        session.context.metrics.rtc_peers.with_label_values(&["observer"]).inc();
        Some(Self { user, session, peer: None, events: None })
    }
}

impl Drop for ObserverLeg {
    fn drop(&mut self) {
        if let Some(peer) = &self.peer {
            peer.cancel.cancel();
        }
        self.session.observers.fetch_sub(1, Ordering::SeqCst);
        self.session.context.metrics.rtc_peers.with_label_values(&["observer"]).dec();
    }
}

#[async_trait::async_trait]
impl Leg for ObserverLeg {
    async fn offer(&mut self, sdp: &Sdp, _: &OfferSummary) -> Result<Option<String>, SessionError> {
        if self.peer.is_some() {
            return Ok(None);
        }
        let (peer, answer, events) = ObserverPeer::start(&self.session, sdp).await?;
        self.peer = Some(peer);
        self.events = Some(events);
        Ok(Some(answer))
    }

    async fn add_candidate(&mut self, c: &IceCandidate) -> Result<(), SessionError> {
        let Some(peer) = &self.peer else { return Ok(()) };
        let init = RTCIceCandidateInit {
            candidate: c.candidate.clone(),
            sdp_mid: c.sdp_mid.clone(),
            sdp_mline_index: c.sdp_m_line_index,
            ..Default::default()
        };
        peer.pc.add_ice_candidate(init).await.map_err(SessionError::from)
    }

    async fn next(&mut self) -> Next {
        let session = self.session.clone();
        loop {
            let event = async {
                match &mut self.events {
                    Some(events) => events.recv().await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                event = event => event,
                () = session.ended() => return Next::Ended("session_ended"),
            };
            match event {
                Some(PeerEvent::LocalCandidate(init)) => return Next::Candidate(session.factory().client_candidate(init, "0")),
                Some(PeerEvent::DataChannel(channel)) => {
                    if let Some(peer) = &self.peer {
                        tokio::spawn(forward_events(channel, session.context.events.subscribe(), peer.cancel.clone()));
                    }
                }
                Some(PeerEvent::State(RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed)) => {
                    return Next::Ended("connection_failed");
                }
                Some(_) => {}
                None => self.events = None,
            }
        }
    }

    async fn close(&mut self, reason: &'static str) {
        if let Some(peer) = &self.peer {
            peer.close().await;
        }
        tracing::info!(observer = %self.user, reason, "observer left");
    }
}
