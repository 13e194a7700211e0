//! Data-channel messages on the `events` channel. Server events are `{"v":1,"type":...,"t_ms":...}` plus the
//! fields of their type (protocol v1, `docs/protocol.md`). Clients send `control` and `answer.text`. Unknown fields in
//! events are for forward compatibility: clients ignore what they do not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::limits::MAX_ANSWER_TEXT_CHARS;
use crate::signal::parse_tagged;

/// The one protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// A server event with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u8,
    #[serde(flatten)]
    pub body: EventBody,
    /// Milliseconds since the session started.
    pub t_ms: u64,
}

impl Event {
    pub fn new(t_ms: u64, body: EventBody) -> Self {
        Self { v: VERSION, body, t_ms }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    #[serde(rename = "session.state")]
    SessionState {
        state: SessionPhase,
        /// While interviewing: the candidate paused the interview (an addition to v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paused: Option<bool>,
    },
    /// A question or follow-up. Additions to v1: the round's kind and title, the question's place among the
    /// planned ones (`index` of `total`; a follow-up shares its parent's), and for follow-ups `parent_id`.
    #[serde(rename = "interviewer.question")]
    InterviewerQuestion {
        question_id: String,
        round: u32,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round_kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round_title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_id: Option<String>,
    },
    #[serde(rename = "interviewer.speech")]
    InterviewerSpeech {
        utterance_id: String,
        phase: SpeechPhase,
        text: String,
        /// Only on `end`: the candidate cut in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interrupted: Option<bool>,
    },
    #[serde(rename = "avatar.visemes")]
    AvatarVisemes { utterance_id: String, frames: Vec<VisemeFrame> },
    #[serde(rename = "transcript.partial")]
    TranscriptPartial { turn_id: String, text: String },
    #[serde(rename = "transcript.final")]
    TranscriptFinal { turn_id: String, question_id: Option<String>, text: String, words: Vec<Word> },
    /// Rolling delivery metrics, once a second. Unknown values are `null`.
    #[serde(rename = "speech.metrics")]
    SpeechMetrics {
        wpm: Option<f32>,
        fillers: Option<u32>,
        filler_per_min: Option<f32>,
        longest_pause_ms: Option<u64>,
        pitch_hz: Option<f32>,
        pitch_var: Option<f32>,
        volume_dbfs: Option<f32>,
        /// Share of the session so far the candidate spent speaking, 0 to 1 (an addition to v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speaking_share: Option<f32>,
    },
    /// Non-verbal signals of the last second: `face` (a face in at least half the analysed frames), `eye_contact`
    /// (share of those frames looking at the camera, 0 to 1), mean `head_yaw` (degrees, positive: turned to
    /// the candidate's left) and `head_pitch` (positive: up), mean `expression` probabilities. All `null` when
    /// no frame was analysed (no vision models); the face fields are `null` without a face. The frame fields say
    /// what video is arriving (an addition to v1 that clients may ignore).
    #[serde(rename = "vision.metrics")]
    VisionMetrics {
        face: Option<bool>,
        eye_contact: Option<f32>,
        head_yaw: Option<f32>,
        head_pitch: Option<f32>,
        expression: Option<BTreeMap<String, f32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame_width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame_height: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fps: Option<f32>,
    },
    #[serde(rename = "cue")]
    Cue { kind: CueKind, text: String },
    /// Scores 0-100 per dimension. Additions to v1: each dimension's 1-5 `ratings` with anchor, reason and
    /// evidence quote, and which `brain` produced them (built_in or llm).
    #[serde(rename = "answer.scored")]
    AnswerScored {
        question_id: String,
        scores: BTreeMap<String, u8>,
        notes: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ratings: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brain: Option<String>,
    },
    #[serde(rename = "report.ready")]
    ReportReady { interview_id: String, url: String },
    /// A client message on the data channel was refused; the session goes on. (An addition to v1.)
    #[serde(rename = "error")]
    Error { code: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionPhase {
    Connecting,
    Interviewing,
    WrappingUp,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeechPhase {
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CueKind {
    PaceFast,
    PaceSlow,
    Fillers,
    EyeContact,
    VolumeLow,
    LongPause,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisemeFrame {
    pub t_ms: u64,
    pub viseme: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Word {
    pub w: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// What a client may send on the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Control(ControlAction),
    AnswerText(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    Repeat,
    Skip,
    Pause,
    Resume,
    End,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum WireClientEvent {
    #[serde(rename = "control")]
    Control { action: ControlAction },
    #[serde(rename = "answer.text")]
    AnswerText { text: String },
}

impl ClientEvent {
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let (value, event) = parse_tagged::<WireClientEvent>(text, &["control", "answer.text"])?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(1) => {}
            Some(other) => return Err(ProtocolError::UnsupportedVersion(other)),
            None => return Err(ProtocolError::Invalid("missing \"v\": 1".into())),
        }
        Ok(match event {
            WireClientEvent::Control { action } => Self::Control(action),
            WireClientEvent::AnswerText { text } => {
                let text = text.trim();
                if text.is_empty() || text.chars().count() > MAX_ANSWER_TEXT_CHARS {
                    return Err(ProtocolError::Invalid(format!(
                        "text must be 1 to {MAX_ANSWER_TEXT_CHARS} characters"
                    )));
                }
                Self::AnswerText(text.to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_v1_envelope() {
        let event = Event::new(1500, EventBody::SessionState { state: SessionPhase::Interviewing, paused: None });
        assert_eq!(event.to_json(), r#"{"v":1,"type":"session.state","state":"interviewing","t_ms":1500}"#);
        let metrics = Event::new(
            2000,
            EventBody::SpeechMetrics {
                wpm: None,
                fillers: None,
                filler_per_min: None,
                longest_pause_ms: None,
                pitch_hz: None,
                pitch_var: None,
                volume_dbfs: Some(-20.5),
                speaking_share: None,
            },
        );
        let json: serde_json::Value = serde_json::from_str(&metrics.to_json()).unwrap();
        assert_eq!(json["type"], "speech.metrics");
        assert_eq!(json["volume_dbfs"], -20.5);
        assert!(json["wpm"].is_null());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), metrics, "events round-trip");
    }

    #[test]
    fn client_events_parse_and_bad_ones_are_named() {
        assert_eq!(
            ClientEvent::parse(r#"{"v":1,"type":"control","action":"repeat"}"#).unwrap(),
            ClientEvent::Control(ControlAction::Repeat)
        );
        assert_eq!(
            ClientEvent::parse(r#"{"v":1,"type":"answer.text","text":" I led the migration. "}"#).unwrap(),
            ClientEvent::AnswerText("I led the migration.".into())
        );
        let code = |text: &str| ClientEvent::parse(text).unwrap_err().code();
        assert_eq!(code(r#"{"v":2,"type":"control","action":"end"}"#), "unsupported_version");
        assert_eq!(code(r#"{"type":"control","action":"end"}"#), "invalid_message");
        assert_eq!(code(r#"{"v":1,"type":"control","action":"dance"}"#), "invalid_message");
        assert_eq!(code(r#"{"v":1,"type":"hug"}"#), "unknown_type");
        assert_eq!(code(r#"{"v":1,"type":"answer.text","text":"  "}"#), "invalid_message");
        assert_eq!(code("]"), "malformed_json");
    }
}
