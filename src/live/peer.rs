//! Building peer connections (webrtc-rs 0.21): codecs, interceptors, DTLS role, ICE servers and timeouts, UDP
//! ports, and a handler that turns the connection's callbacks into `PeerEvent`s on a channel. Callbacks run on the
//! connection's own driver task, so the handler only forwards; all work happens in the session's tasks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::mpsc;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    Registry, SettingEngineBuilder, register_default_interceptors,
};

use candor_signaling::{IceCandidate, rewrite_host_address, rewrite_sdp_host_addresses};

use crate::config::{Config, PortRange};

/// What a peer connection reports; consumed by its session.
pub enum PeerEvent {
    LocalCandidate(RTCIceCandidateInit),
    GatheringComplete,
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
    DataChannel(Arc<dyn DataChannel>),
}

struct Forwarder(mpsc::UnboundedSender<PeerEvent>);

// The channel is unbounded because callbacks must never wait; the events are few (a handful of candidates and
// state changes, one per track and channel), so it cannot grow without bound.
#[async_trait::async_trait]
impl PeerConnectionEventHandler for Forwarder {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(candidate) = event.candidate.to_json() {
            let _ = self.0.send(PeerEvent::LocalCandidate(candidate));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(PeerEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(PeerEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.0.send(PeerEvent::Track(track));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.0.send(PeerEvent::DataChannel(channel));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("webrtc: {0}")]
    Webrtc(#[from] webrtc::error::Error),
    #[error("no free UDP port in {0}-{1}")]
    NoPort(u16, u16),
}

/// Makes peer connections with the server's settings.
pub struct PeerFactory {
    bind_ip: IpAddr,
    /// Announced instead of the bound address in what clients see (webrtc-rs ignores its own 1:1 NAT setting).
    public_ip: Option<IpAddr>,
    ports: Option<PortRange>,
    /// Next port to try within `ports`, so consecutive peers spread over the range.
    next_port: AtomicU32,
    ice_servers: Vec<RTCIceServer>,
    disconnected: Duration,
    failed: Duration,
}

impl PeerFactory {
    pub fn new(config: &Config) -> Self {
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        Self {
            bind_ip: config.rtc_bind_ip,
            public_ip: config.rtc_public_ip,
            ports: config.rtc_udp_ports,
            next_port: AtomicU32::new(0),
            ice_servers,
            disconnected: Duration::from_secs(config.ice_disconnected_secs),
            failed: Duration::from_secs(config.ice_failed_secs),
        }
    }

    /// A new peer connection and the stream of its events.
    pub async fn create(&self) -> Result<(Arc<dyn PeerConnection>, mpsc::UnboundedReceiver<PeerEvent>), PeerError> {
        let attempts = self.ports.map_or(1, |r| u32::from(r.high - r.low) + 1).min(64);
        for _ in 0..attempts {
            let port = match self.ports {
                None => 0,
                Some(range) => {
                    let span = u32::from(range.high - range.low) + 1;
                    range.low + (self.next_port.fetch_add(1, Ordering::Relaxed) % span) as u16
                }
            };
            let (tx, rx) = mpsc::unbounded_channel();
            match self.build(SocketAddr::new(self.bind_ip, port), tx).await {
                Ok(pc) => return Ok((pc, rx)),
                Err(e) if self.ports.is_some() => tracing::debug!(port, error = %e, "UDP port busy, trying the next"),
                Err(e) => return Err(e),
            }
        }
        let range = self.ports.expect("only a port range retries");
        Err(PeerError::NoPort(range.low, range.high))
    }

    /// A local candidate as a client gets it: the public address (if configured) and a mid, which the stack
    /// leaves empty (everything is bundled on `first_mid`).
    pub fn client_candidate(&self, init: RTCIceCandidateInit, first_mid: &str) -> IceCandidate {
        let candidate = match self.public_ip {
            Some(public) => rewrite_host_address(&init.candidate, &public.to_string()),
            None => init.candidate,
        };
        let sdp_mid = init.sdp_mid.filter(|mid| !mid.is_empty()).unwrap_or_else(|| first_mid.to_string());
        IceCandidate {
            candidate,
            sdp_mid: Some(sdp_mid),
            sdp_m_line_index: Some(init.sdp_mline_index.unwrap_or(0)),
            username_fragment: None,
        }
    }

    /// An answer as a client gets it: host candidates inside carry the public address (if configured).
    pub fn client_sdp(&self, sdp: String) -> String {
        match self.public_ip {
            Some(public) => rewrite_sdp_host_addresses(&sdp, &public.to_string()),
            None => sdp,
        }
    }

    async fn build(
        &self,
        addr: SocketAddr,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<Arc<dyn PeerConnection>, PeerError> {
        let mut media = MediaEngine::default();
        media
            .register_codec(codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111), RtpCodecKind::Audio)?;
        media.register_codec(codec(MIME_TYPE_VP8, 90_000, 0, "", 96), RtpCodecKind::Video)?;
        media.register_codec(
            codec(
                MIME_TYPE_H264,
                90_000,
                0,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                102,
            ),
            RtpCodecKind::Video,
        )?;
        let interceptors = register_default_interceptors(Registry::new(), &mut media)?;
        let settings = SettingEngineBuilder::new()
            // As DTLS server the handshake starts as soon as the client's first flight arrives (as client,
            // webrtc-rs sends its first flight about 190 ms late).
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_ice_timeouts(Some(self.disconnected), Some(self.failed), Some(Duration::from_secs(2)))
            // Browsers' .local candidates are ignored (peer-reflexive discovery replaces them); no mDNS socket per peer.
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let configuration = RTCConfigurationBuilder::new().with_ice_servers(self.ice_servers.clone()).build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Forwarder(events)))
            .with_udp_addrs(vec![addr])
            .build()
            .await?;
        Ok(Arc::new(pc))
    }
}

pub fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str, payload_type: u8) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_string(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_string(),
            rtcp_feedback: vec![],
        },
        payload_type,
    }
}
