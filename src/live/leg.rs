//! What signaling drives: one participant's peer. The signaling endpoint (`api::rtc`) runs protocol v1's
//! negotiation over its socket and hands each step to a `Leg`; a candidate's leg starts the session, an
//! observer's watches one (`observer`). Nothing here knows about sockets.

use std::sync::Arc;

use candor_signaling::{IceCandidate, OfferSummary, Sdp};
use tokio::sync::mpsc;

use super::Claim;
use super::session::{Session, SessionError, Started};

/// What the client must hear next.
pub enum Next {
    Candidate(IceCandidate),
    /// The leg is over (the session ended, the connection failed), with the reason for the client.
    Ended(&'static str),
}

#[async_trait::async_trait]
pub trait Leg: Send {
    /// Applies the client's offer and returns the answer; `None` when this leg takes no further offers.
    async fn offer(&mut self, sdp: &Sdp, summary: &OfferSummary) -> Result<Option<String>, SessionError>;
    async fn add_candidate(&mut self, candidate: &IceCandidate) -> Result<(), SessionError>;
    /// Waits for the next local candidate or the end. Cancel-safe: the signaling loop races it with the socket.
    async fn next(&mut self) -> Next;
    /// The client left or negotiation stopped: ends the leg (a candidate's ends the session).
    async fn close(&mut self, reason: &'static str);
}

/// The candidate's leg: the first offer starts the session, which lives as long as the signaling does.
pub struct CandidateLeg {
    claim: Option<Claim>,
    session: Option<Arc<Session>>,
    candidates: Option<mpsc::UnboundedReceiver<IceCandidate>>,
}

impl CandidateLeg {
    pub fn new(claim: Claim) -> Self {
        Self { claim: Some(claim), session: None, candidates: None }
    }
}

#[async_trait::async_trait]
impl Leg for CandidateLeg {
    async fn offer(&mut self, sdp: &Sdp, summary: &OfferSummary) -> Result<Option<String>, SessionError> {
        let Some(claim) = self.claim.take() else { return Ok(None) };
        let Started { session, answer, candidates } =
            Session::start(claim, sdp, summary.audio.mid.clone(), summary.candidates > 0).await?;
        self.session = Some(session);
        self.candidates = Some(candidates);
        Ok(Some(answer))
    }

    async fn add_candidate(&mut self, candidate: &IceCandidate) -> Result<(), SessionError> {
        match &self.session {
            Some(session) => session.add_remote_candidate(candidate).await,
            None => Ok(()),
        }
    }

    async fn next(&mut self) -> Next {
        let Some(session) = self.session.clone() else { return std::future::pending().await };
        loop {
            let candidate = async {
                match &mut self.candidates {
                    Some(candidates) => candidates.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                candidate = candidate => match candidate {
                    Some(candidate) => return Next::Candidate(candidate),
                    None => self.candidates = None,
                },
                () = session.ended() => return Next::Ended("session_ended"),
            }
        }
    }

    async fn close(&mut self, reason: &'static str) {
        if let Some(session) = &self.session {
            session.end(reason).await;
        }
    }
}
