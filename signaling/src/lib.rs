//! Candor protocol v1, without I/O: what browsers and other clients send and receive while a live interview runs.
//!
//! # Layout
//! - `limits`: size limits every parser enforces first.
//! - `sdp`: `Sdp`, a session description that passed sanity checks, and what an offer carries.
//! - `ice`: `IceCandidate`, and which candidates are worth handing to the ICE agent.
//! - `signal`: WebSocket signaling messages, client to server and back.
//! - `events`: data-channel messages: server events (`{"v":1,"type",...,"t_ms"}`) and client controls.
//! - `negotiation`: the rules of one signaling conversation, as a state machine: messages in, actions out.
//!
//! Nothing here touches sockets, clocks or media: the server feeds parsed input and `now`, and carries out the
//! actions. That keeps every rule unit-testable and the parsers fuzzable (`fuzz/`).

pub mod events;
pub mod ice;
pub mod limits;
pub mod negotiation;
pub mod sdp;
pub mod signal;

pub use events::{ClientEvent, ControlAction, Event, EventBody};
pub use ice::{CandidateUse, IceCandidate, rewrite_host_address, rewrite_sdp_host_addresses};
pub use negotiation::{Action, Negotiation};
pub use sdp::{OfferSummary, Sdp};
pub use signal::{ClientMessage, ServerMessage};

/// Why a message from a client was refused. `code()` is the stable string sent back in `error` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("unsupported protocol version {0}; this server speaks v1")]
    UnsupportedVersion(u64),
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    #[error("the offer has no audio track; Candor needs the microphone")]
    OfferWithoutAudio,
    #[error("the offer has no codec in common with the server: {0}")]
    NoCommonCodec(String),
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    #[error("{0}")]
    OutOfOrder(&'static str),
    #[error("the offer has {0} media sections; at most {max} are taken", max = crate::limits::MAX_MEDIA_SECTIONS)]
    TooManyMediaSections(usize),
}

impl ProtocolError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "message_too_large",
            Self::MalformedJson(_) => "malformed_json",
            Self::UnknownType(_) => "unknown_type",
            Self::Invalid(_) => "invalid_message",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::InvalidSdp(_) => "invalid_sdp",
            Self::OfferWithoutAudio => "offer_without_audio",
            Self::NoCommonCodec(_) => "no_common_codec",
            Self::InvalidCandidate(_) => "invalid_candidate",
            Self::OutOfOrder(_) => "out_of_order",
            Self::TooManyMediaSections(_) => "too_many_media_sections",
        }
    }
}
