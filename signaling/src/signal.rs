//! WebSocket signaling messages: one JSON object per text frame, tagged by `type`.
//! Client to server: `offer`, `candidate`, `end`. Server to client: `answer`, `candidate`, `error`, `ended`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ProtocolError;
use crate::ice::IceCandidate;
use crate::limits::check_size;
use crate::sdp::Sdp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Offer(Sdp),
    Candidate(IceCandidate),
    End,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireClientMessage {
    Offer { sdp: String },
    Candidate { candidate: IceCandidate },
    End,
}

/// Parses one text frame, telling apart oversized, malformed, unknown and invalid messages.
pub(crate) fn parse_tagged<T: for<'de> Deserialize<'de>>(
    text: &str,
    known: &[&str],
) -> Result<(Value, T), ProtocolError> {
    check_size(text)?;
    let value: Value = serde_json::from_str(text).map_err(|e| ProtocolError::MalformedJson(e.to_string()))?;
    let kind = value
        .get("type")
        .ok_or_else(|| ProtocolError::Invalid("missing \"type\"".into()))?
        .as_str()
        .ok_or_else(|| ProtocolError::Invalid("\"type\" must be a string".into()))?;
    if !known.contains(&kind) {
        return Err(ProtocolError::UnknownType(kind.chars().take(64).collect()));
    }
    let message = T::deserialize(&value).map_err(|e| ProtocolError::Invalid(e.to_string()))?;
    Ok((value, message))
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let (_, message) = parse_tagged::<WireClientMessage>(text, &["offer", "candidate", "end"])?;
        Ok(match message {
            WireClientMessage::Offer { sdp } => Self::Offer(Sdp::parse(&sdp)?),
            WireClientMessage::Candidate { candidate } => Self::Candidate(candidate),
            WireClientMessage::End => Self::End,
        })
    }

    /// The JSON a client sends (used by Candor's own test and load clients).
    pub fn to_json(&self) -> String {
        let value = match self {
            Self::Offer(sdp) => serde_json::json!({"type": "offer", "sdp": sdp.as_str()}),
            Self::Candidate(candidate) => serde_json::json!({"type": "candidate", "candidate": candidate}),
            Self::End => serde_json::json!({"type": "end"}),
        };
        value.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Answer { sdp: String },
    Candidate { candidate: IceCandidate },
    Error { code: String, message: String },
    Ended { reason: String },
}

impl ServerMessage {
    pub fn error(error: &ProtocolError) -> Self {
        Self::Error { code: error.code().to_string(), message: error.to_string() }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::tests::BROWSER_OFFER;

    #[test]
    fn the_three_client_messages_parse() {
        let offer = serde_json::json!({"type": "offer", "sdp": BROWSER_OFFER}).to_string();
        assert!(matches!(ClientMessage::parse(&offer).unwrap(), ClientMessage::Offer(_)));
        let candidate = r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
        let ClientMessage::Candidate(c) = ClientMessage::parse(candidate).unwrap() else { panic!() };
        assert_eq!((c.sdp_mid.as_deref(), c.sdp_m_line_index), (Some("0"), Some(0)));
        assert_eq!(ClientMessage::parse(r#"{"type":"end"}"#).unwrap(), ClientMessage::End);
    }

    #[test]
    fn each_kind_of_bad_message_has_its_own_code() {
        let code = |text: &str| ClientMessage::parse(text).unwrap_err().code();
        assert_eq!(code("{not json"), "malformed_json");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"sdp":"v=0"}"#), "invalid_message");
        assert_eq!(code(r#"{"type":7}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"offer"}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"offer","sdp":"garbage"}"#), "invalid_sdp");
        assert_eq!(code(&format!(r#"{{"type":"end","pad":"{}"}}"#, "x".repeat(70_000))), "message_too_large");
    }

    #[test]
    fn server_messages_have_the_v1_shape() {
        let error = ServerMessage::Error { code: "c".into(), message: "m".into() };
        assert_eq!(error.to_json(), r#"{"type":"error","code":"c","message":"m"}"#);
        let ended = ServerMessage::Ended { reason: "client_ended".into() };
        assert_eq!(ended.to_json(), r#"{"type":"ended","reason":"client_ended"}"#);
        let c = IceCandidate {
            candidate: "candidate:1".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        assert_eq!(
            ServerMessage::Candidate { candidate: c }.to_json(),
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}}"#
        );
    }
}
