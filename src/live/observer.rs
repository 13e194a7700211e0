//! Observers (the SFU part): a coach or admin joins a live session with a receive-only peer. The candidate's
//! audio and video RTP are forwarded without transcoding (new SSRC and payload type per leg), the interviewer's
//! voice frames are re-sent, and every event is copied to the observer's `events` channel. An observer that
//! lags loses packets, never slows the candidate; one that leaves changes nothing for the candidate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use candor_signaling::{Action, Negotiation, ServerMessage};
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
        offer: &candor_signaling::Sdp,
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
        offer: &candor_signaling::Sdp,
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

/// The observer's signaling loop; the observer leaves when this WebSocket closes or the session ends.
pub async fn run(mut socket: WebSocket, user: UserId, session: Arc<Session>) {
    tracing::info!(interview = %session.interview(), observer = %user, "observer joined");
    let metrics = session.context.metrics.clone();
    metrics.rtc_peers.with_label_values(&["observer"]).inc();
    let mut negotiation = Negotiation::new();
    let mut peer: Option<ObserverPeer> = None;
    let mut peer_events: Option<mpsc::UnboundedReceiver<PeerEvent>> = None;
    let send = |message: ServerMessage| Message::Text(message.to_json().into());
    let reason = loop {
        let event = async {
            match &mut peer_events {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = socket.recv() => {
                let Some(Ok(message)) = message else { break "signaling_closed" };
                let Message::Text(text) = message else { continue };
                let mut close = None;
                for action in negotiation.handle_text(&text) {
                    match action {
                        Action::ApplyOffer { sdp, .. } if peer.is_none() => match ObserverPeer::start(&session, &sdp).await {
                            Ok((started, answer, events)) => {
                                let _ = socket.send(send(ServerMessage::Answer { sdp: answer })).await;
                                peer = Some(started);
                                peer_events = Some(events);
                            }
                            Err(e) => {
                                let _ = socket.send(send(ServerMessage::Error { code: "negotiation_failed".into(), message: e.to_string() })).await;
                                close = Some("negotiation_failed");
                            }
                        },
                        Action::AddCandidate(c) => {
                            if let Some(p) = &peer {
                                let init = RTCIceCandidateInit { candidate: c.candidate, sdp_mid: c.sdp_mid, sdp_mline_index: c.sdp_m_line_index, ..Default::default() };
                                let _ = p.pc.add_ice_candidate(init).await;
                            }
                        }
                        Action::Reply(message) => { let _ = socket.send(send(message)).await; }
                        Action::Close { reason } => close = Some(reason),
                        _ => {}
                    }
                }
                if let Some(reason) = close { break reason; }
            }
            Some(event) = event => match event {
                PeerEvent::LocalCandidate(init) => {
                    let candidate = session.factory().client_candidate(init, "0");
                    let _ = socket.send(send(ServerMessage::Candidate { candidate })).await;
                }
                PeerEvent::DataChannel(channel) => {
                    if let Some(p) = &peer {
                        tokio::spawn(forward_events(channel, session.context.events.subscribe(), p.cancel.clone()));
                    }
                }
                PeerEvent::State(RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed) => break "connection_failed",
                _ => {}
            },
            () = session.ended() => break "session_ended",
        }
    };
    if let Some(peer) = &peer {
        peer.close().await;
    }
    metrics.rtc_peers.with_label_values(&["observer"]).dec();
    let _ = socket.send(send(ServerMessage::Ended { reason: reason.to_string() })).await;
    let _ = socket.send(Message::Close(None)).await;
    tracing::info!(observer = %user, reason, "observer left");
}
