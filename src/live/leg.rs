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

/// How a candidate joins: a fresh session on the user's claim, or the session of the interview they are already
/// live in (a rejoin after a drop, or a reloaded page).
pub enum Join {
    Start(Claim),
    Rejoin(Arc<Session>),
}

impl Join {
    /// Applies the offer; on failure a rejoin's session is handed back (a corrected offer may try again).
    pub async fn offer(
        self,
        sdp: &Sdp,
        first_mid: Option<String>,
        complete_answer: bool,
    ) -> Result<Started, (SessionError, Option<Self>)> {
        match self {
            Self::Start(claim) => Session::start(claim, sdp, first_mid, complete_answer).await.map_err(|e| (e, None)),
            Self::Rejoin(session) => match session.rejoin(sdp, first_mid, complete_answer).await {
                Ok(started) => Ok(started),
                Err(e) => Err((e, Some(Self::Rejoin(session)))),
            },
        }
    }
}

/// The candidate's leg: the first offer starts (or rejoins) the session. When the signaling closes without an
/// end, the session waits for the candidate to rejoin (`Session::suspend`); a leg that a rejoin replaced ends
/// (`replaced`) and leaves the session alone.
pub struct CandidateLeg {
    join: Option<Join>,
    session: Option<Arc<Session>>,
    generation: u64,
    candidates: Option<mpsc::UnboundedReceiver<IceCandidate>>,
}

impl CandidateLeg {
    pub fn new(claim: Claim) -> Self {
        Self { join: Some(Join::Start(claim)), session: None, generation: 0, candidates: None }
    }

    pub fn rejoin(session: Arc<Session>) -> Self {
        Self { join: Some(Join::Rejoin(session)), session: None, generation: 0, candidates: None }
    }
}

#[async_trait::async_trait]
impl Leg for CandidateLeg {
    async fn offer(&mut self, sdp: &Sdp, summary: &OfferSummary) -> Result<Option<String>, SessionError> {
        let Some(join) = self.join.take() else { return Ok(None) };
        let started = join.offer(sdp, summary.audio.mid.clone(), summary.candidates > 0).await;
        let Started { session, answer, candidates, generation } = started.map_err(|(e, join)| {
            self.join = join;
            e
        })?;
        self.session = Some(session);
        self.generation = generation;
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
                () = session.ended() => return Next::Ended(session.closing_reason()),
                () = session.replaced(self.generation) => return Next::Ended("replaced"),
            }
        }
    }

    async fn close(&mut self, reason: &'static str) {
        let Some(session) = &self.session else { return };
        match reason {
            // A leg a rejoin replaced speaks for nobody.
            _ if session.generation() != self.generation => {}
            "client_ended" | "rate_limited" => session.end(reason).await,
            _ => session.suspend(self.generation, reason).await,
        }
    }
}
