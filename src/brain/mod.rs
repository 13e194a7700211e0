//! The async side of the interviewer's brains. The built-in brain lives in `candor-interviewer` and needs no
//! I/O; an LLM brain is an OpenAI-compatible chat endpoint (`openai`). `Brain` is what a session calls to have
//! an answer judged; `Health` remembers whether the endpoint works, so a dead one fails fast (the built-in
//! brain then decides at once) and is tried again after a while. `/readyz` and the metrics report it.

mod openai;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use candor_interviewer::brain::BrainRequest;
use candor_interviewer::stream::StreamError;

pub use openai::OpenAiBrain;

#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("the LLM endpoint is down; next try in {0} s")]
    Down(u64),
    #[error("could not reach the LLM endpoint: {0}")]
    Connect(String),
    #[error("the LLM endpoint answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("no first token within {0} ms")]
    FirstToken(u64),
    #[error("the reply did not finish within {0} ms")]
    Timeout(u64),
    #[error("the stream broke off before it finished")]
    Incomplete,
    #[error("the endpoint refused: {0}")]
    Refused(String),
    #[error("malformed stream: {0}")]
    Malformed(String),
}

impl From<StreamError> for BrainError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Refused(why) => Self::Refused(why),
            StreamError::Malformed(why) => Self::Malformed(why),
        }
    }
}

impl BrainError {
    /// For the `outcome` label of the brain metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Down(_) => "down",
            Self::Connect(_) => "unreachable",
            Self::Status { .. } => "http_error",
            Self::FirstToken(_) | Self::Timeout(_) => "timeout",
            Self::Incomplete => "incomplete",
            Self::Refused(_) => "refused",
            Self::Malformed(_) => "malformed",
        }
    }
}

/// Called once with the reply so far when its spoken decision is complete (`brain::decision_in`), so the
/// interviewer speaks while the ratings are still being written.
pub type OnDecided<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Something that judges answers: returns the reply text (JSON the interviewer validates).
#[async_trait::async_trait]
pub trait Brain: Send + Sync {
    async fn judge(&self, request: &BrainRequest, decided: OnDecided<'_>) -> Result<String, BrainError>;
    /// "ok", "down" (failing; retried later).
    fn health(&self) -> &'static str;
}

/// Up or down, with when to try again.
pub struct Health {
    retry_after: Duration,
    down_until: Mutex<Option<Instant>>,
}

impl Health {
    pub fn new(retry_after: Duration) -> Self {
        Self { retry_after, down_until: Mutex::new(None) }
    }

    /// `Err` while down and the retry time has not come.
    pub fn check(&self) -> Result<(), BrainError> {
        let down_until = *self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        match down_until {
            Some(until) if Instant::now() < until => Err(BrainError::Down((until - Instant::now()).as_secs())),
            _ => Ok(()),
        }
    }

    pub fn record(&self, ok: bool) {
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) = (!ok).then(|| Instant::now() + self.retry_after);
    }

    pub fn is_up(&self) -> bool {
        self.down_until.lock().unwrap_or_else(|p| p.into_inner()).is_none_or(|until| Instant::now() >= until)
    }
}
