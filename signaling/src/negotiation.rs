//! The rules of one signaling conversation. The client offers first; candidates that arrive before the offer
//! wait (up to `MAX_EARLY_CANDIDATES`); a bad message is answered with an `error` and the conversation goes on;
//! `end` closes it; after that everything is ignored. Renegotiation by the client is not supported in v1.

use crate::ProtocolError;
use crate::ice::{CandidateUse, IceCandidate};
use crate::limits::MAX_EARLY_CANDIDATES;
use crate::sdp::{OfferSummary, Sdp};
use crate::signal::{ClientMessage, ServerMessage};

/// What the server must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply the offer to the peer connection and send back the answer.
    ApplyOffer {
        sdp: Sdp,
        summary: OfferSummary,
    },
    AddCandidate(IceCandidate),
    EndOfCandidates,
    /// A candidate that is harmless but not used, with the reason (for logs).
    IgnoreCandidate(&'static str),
    Reply(ServerMessage),
    /// Close the session and tell the client why.
    Close {
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingOffer,
    Negotiated,
    Ended,
}

#[derive(Debug)]
pub struct Negotiation {
    state: State,
    early_candidates: Vec<IceCandidate>,
}

impl Default for Negotiation {
    fn default() -> Self {
        Self::new()
    }
}

impl Negotiation {
    pub fn new() -> Self {
        Self { state: State::AwaitingOffer, early_candidates: Vec::new() }
    }

    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// One text frame from the client.
    /// No offer has been applied yet (a connection that stays here too long is closed by its owner).
    pub fn awaiting_offer(&self) -> bool {
        self.state == State::AwaitingOffer
    }

    pub fn handle_text(&mut self, text: &str) -> Vec<Action> {
        if self.state == State::Ended {
            return Vec::new();
        }
        match ClientMessage::parse(text) {
            Ok(message) => self.handle_message(message),
            Err(error) => vec![Action::Reply(ServerMessage::error(&error))],
        }
    }

    pub fn handle_message(&mut self, message: ClientMessage) -> Vec<Action> {
        match (self.state, message) {
            (State::Ended, _) => Vec::new(),
            (_, ClientMessage::End) => {
                self.state = State::Ended;
                vec![Action::Close { reason: "client_ended" }]
            }
            (State::AwaitingOffer, ClientMessage::Offer(sdp)) => match sdp.summarize_offer() {
                Ok(summary) => {
                    self.state = State::Negotiated;
                    let mut actions = vec![Action::ApplyOffer { sdp, summary }];
                    for candidate in std::mem::take(&mut self.early_candidates) {
                        actions.push(candidate_action(&candidate));
                    }
                    actions
                }
                Err(error) => vec![Action::Reply(ServerMessage::error(&error))],
            },
            (State::Negotiated, ClientMessage::Offer(_)) => vec![Action::Reply(ServerMessage::error(
                &ProtocolError::OutOfOrder("already negotiated; renegotiation is not supported, end and reconnect"),
            ))],
            (State::AwaitingOffer, ClientMessage::Candidate(candidate)) => {
                if let Err(error) = candidate.validate() {
                    return vec![Action::Reply(ServerMessage::error(&error))];
                }
                if self.early_candidates.len() >= MAX_EARLY_CANDIDATES {
                    return vec![Action::Reply(ServerMessage::error(&ProtocolError::OutOfOrder(
                        "too many candidates before the offer",
                    )))];
                }
                self.early_candidates.push(candidate);
                Vec::new()
            }
            (State::Negotiated, ClientMessage::Candidate(candidate)) => vec![candidate_action(&candidate)],
        }
    }
}

fn candidate_action(candidate: &IceCandidate) -> Action {
    match candidate.validate() {
        Ok(CandidateUse::Add) => Action::AddCandidate(candidate.clone()),
        Ok(CandidateUse::EndOfCandidates) => Action::EndOfCandidates,
        Ok(CandidateUse::Ignore(reason)) => Action::IgnoreCandidate(reason),
        Err(error) => Action::Reply(ServerMessage::error(&error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::tests::BROWSER_OFFER;

    fn offer() -> String {
        serde_json::json!({"type": "offer", "sdp": BROWSER_OFFER}).to_string()
    }

    fn candidate(address: &str) -> String {
        serde_json::json!({"type": "candidate", "candidate": {
            "candidate": format!("candidate:1 1 udp 2122260223 {address} 50000 typ host"), "sdpMid": "0"}})
        .to_string()
    }

    fn error_code(actions: &[Action]) -> Option<&str> {
        actions.iter().find_map(|a| match a {
            Action::Reply(ServerMessage::Error { code, .. }) => Some(code.as_str()),
            _ => None,
        })
    }

    #[test]
    fn candidates_before_the_offer_wait_for_it() {
        let mut n = Negotiation::new();
        assert!(n.handle_text(&candidate("127.0.0.1")).is_empty());
        assert!(n.handle_text(&candidate("abc.local")).is_empty());
        let actions = n.handle_text(&offer());
        assert!(matches!(actions[0], Action::ApplyOffer { .. }));
        assert!(matches!(&actions[1], Action::AddCandidate(c) if c.candidate.contains("127.0.0.1")));
        assert_eq!(actions[2], Action::IgnoreCandidate("mDNS host candidate"));
    }

    #[test]
    fn a_bad_offer_can_be_retried_and_a_second_good_one_is_refused() {
        let mut n = Negotiation::new();
        let garbage = n.handle_text(r#"{"type":"offer","sdp":"nonsense"}"#);
        assert_eq!(error_code(&garbage), Some("invalid_sdp"));
        let no_audio = serde_json::json!({"type": "offer", "sdp": BROWSER_OFFER.replace("m=audio 9", "m=audio 0")});
        assert_eq!(error_code(&n.handle_text(&no_audio.to_string())), Some("offer_without_audio"));
        assert!(matches!(n.handle_text(&offer())[0], Action::ApplyOffer { .. }));
        assert_eq!(error_code(&n.handle_text(&offer())), Some("out_of_order"));
    }

    #[test]
    fn bad_messages_get_errors_and_the_conversation_goes_on() {
        let mut n = Negotiation::new();
        assert_eq!(error_code(&n.handle_text("{{{")), Some("malformed_json"));
        assert_eq!(error_code(&n.handle_text(r#"{"type":"teleport"}"#)), Some("unknown_type"));
        assert!(matches!(n.handle_text(&offer())[0], Action::ApplyOffer { .. }));
        assert!(matches!(n.handle_text(&candidate("10.1.2.3"))[0], Action::AddCandidate(_)));
    }

    #[test]
    fn end_closes_and_silences_the_conversation() {
        let mut n = Negotiation::new();
        assert_eq!(n.handle_text(r#"{"type":"end"}"#), [Action::Close { reason: "client_ended" }]);
        assert!(n.is_ended());
        assert!(n.handle_text(&offer()).is_empty());
    }

    #[test]
    fn too_many_early_candidates_are_refused() {
        let mut n = Negotiation::new();
        for _ in 0..MAX_EARLY_CANDIDATES {
            assert!(n.handle_text(&candidate("127.0.0.1")).is_empty());
        }
        assert_eq!(error_code(&n.handle_text(&candidate("127.0.0.1"))), Some("out_of_order"));
    }
}
