//! Live sessions: one WebRTC peer per participant, the media flowing through it, and who is live.
//!
//! # Layout
//! - `peer`: building peer connections and turning their callbacks into events.
//! - `session`: a candidate's session: negotiation results, its tasks, its end.
//! - `media`: inbound audio and video: decode, measure, copy to observers.
//! - `engines`: the speech and vision models (loaded once) and the bounded worker pool where inference runs.
//! - `speech`: each candidate's audio through the speech pipeline.
//! - `vision`: each candidate's video frames through face analysis, batched across sessions.
//! - `pool`: the bounded worker pool; `batch`: work of many sessions gathered into batches on it.
//! - `voice`: the interviewer's outbound voice track.
//! - `conversation`: the interviewer state machine of a session, and carrying out what it decides.
//! - `recorder`: a session's storage writes, off the media paths.
//! - `mux`: the containers recordings are written in (Ogg Opus, WebM).
//! - `taping`: recording a consenting candidate's session (both voices, the camera) as it happens.
//! - `summary`: delivery and presence summarised for the report from what the recorder stored.
//! - `events`: delivering v1 events to the data channel and to observers.
//! - `leg`: what signaling drives (`api::rtc` runs the loop): a candidate's leg starts the session.
//! - `observer`: a coach's receive-only leg fed from a session's copies.
//!
//! `Live` is the process-wide part: the peer factory and the registry that enforces one live session per user
//! and lets observers find the session they may watch.

mod batch;
mod cluster;
mod conversation;
mod engines;
mod events;
mod leg;
mod media;
mod mux;
mod observer;
mod peer;
mod pool;
mod recorder;
mod session;
mod speech;
mod summary;
mod taping;
mod vision;
mod voice;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::domain::{InterviewId, UserId};
use crate::metrics::Metrics;
use crate::store::Store;

pub use events::EventSink;
pub use leg::{CandidateLeg, Join, Leg, Next};
pub use observer::{MAX_OBSERVERS, ObserverLeg};
pub use peer::PeerFactory;
pub use session::{ABANDONED, Session, SessionContext, SessionError};
pub use engines::Engines;
pub use cluster::{Cluster, NodeEntry};

pub struct Live {
    pub factory: PeerFactory,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub engines: Arc<Engines>,
    /// The LLM brain the interviewer asks, when one is configured.
    pub brain: Option<Arc<dyn crate::brain::Brain>>,
    /// Notification emails (the report is ready), when SMTP is configured.
    pub mailer: Option<Arc<crate::notify::Mailer>>,
    /// Where consenting candidates' sessions are recorded.
    pub recordings: Arc<crate::recordings::Recordings>,
    registry: Mutex<Registry>,
    /// Set once the server stops taking sessions (`drain`).
    draining: std::sync::atomic::AtomicBool,
    /// How many sessions are live, for `drain` to wait on.
    live_count: tokio::sync::watch::Sender<usize>,
    /// The claims shared with other nodes.
    cluster: Arc<cluster::Cluster>,
}

#[derive(Default)]
struct Registry {
    /// The interview each user is live in (claimed before negotiation starts).
    by_user: HashMap<UserId, InterviewId>,
    sessions: HashMap<InterviewId, Arc<Session>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefused {
    #[error("you already have a live session; end it before starting another")]
    AlreadyLive,
    #[error("this server carries as many live interviews as it may ({0}); try again in a few minutes")]
    NodeFull(usize),
    #[error("this server is shutting down; join again in a moment")]
    Draining,
    /// The session runs on another node, reached at this URL: signaling goes there.
    #[error("you already have a live session, on another server")]
    RunsElsewhere(String),
}

impl ClaimRefused {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyLive | Self::RunsElsewhere(_) => "session_already_live",
            Self::NodeFull(_) => "server_full",
            Self::Draining => "server_draining",
        }
    }
}

/// A user's claim to be live in an interview; released when dropped unless a session took it over.
pub struct Claim {
    live: Arc<Live>,
    pub user: UserId,
    pub interview: InterviewId,
    taken: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.taken {
            self.live.release(self.user, self.interview);
        }
    }
}

/// Keeps this node in the registry, and its shared claims alive, while the node is.
async fn heartbeat(live: std::sync::Weak<Live>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(live) = live.upgrade() else { return };
        live.beat().await;
    }
}

impl Live {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        metrics: Arc<Metrics>,
        engines: Arc<Engines>,
        mailer: Option<Arc<crate::notify::Mailer>>,
        recordings: Arc<crate::recordings::Recordings>,
        cluster: Cluster,
    ) -> Arc<Self> {
        let brain = config.llm_url.as_deref().map(|url| {
            let brain = crate::brain::OpenAiBrain::new(
                url,
                config.llm_api_key.clone(),
                config.llm_model.clone(),
                std::time::Duration::from_millis(config.llm_first_token_ms),
                std::time::Duration::from_millis(config.llm_timeout_ms),
                std::time::Duration::from_secs(config.llm_retry_secs),
            );
            Arc::new(brain) as Arc<dyn crate::brain::Brain>
        });
        let (pool, workers) = (engines.pool.load(), engines.pool.workers());
        metrics.watch_pool(move || {
            let (busy, waiting) = pool.counts();
            (workers, busy, waiting)
        });
        let cluster = Arc::new(cluster);
        let live = Arc::new(Self {
            factory: PeerFactory::new(&config),
            store,
            metrics,
            config,
            engines,
            brain,
            mailer,
            recordings,
            registry: Mutex::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            live_count: tokio::sync::watch::Sender::new(0),
            cluster,
        });
        if live.cluster.is_shared() {
            tokio::spawn(heartbeat(Arc::downgrade(&live), live.cluster.heartbeat));
        }
        live
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the one live session a user may have: refused if the user is live already (in any interview), the
    /// interview has a live candidate, this node carries as many sessions as it may (`max_live_sessions`), or
    /// it is draining.
    /// With Redis, the user must not be live on another node either; when they are, in this very interview, and
    /// that node has an address, the refusal says where (`RunsElsewhere`) so signaling can go there.
    pub async fn claim(self: &Arc<Self>, user: UserId, interview: InterviewId) -> Result<Claim, ClaimRefused> {
        let claim = self.claim_here(user, interview)?;
        match self.cluster.claim(user, interview).await {
            cluster::Claimed::Here => Ok(claim),
            cluster::Claimed::Elsewhere { node, interview: theirs } => {
                let there = if theirs == interview.to_string() && node != self.cluster.id() {
                    self.cluster.node(&node).await.and_then(|n| n.url)
                } else {
                    None
                };
                Err(there.map_or(ClaimRefused::AlreadyLive, ClaimRefused::RunsElsewhere))
            }
        }
    }

    /// The address of the other node running `interview`'s session, if one does.
    pub async fn runs_elsewhere(&self, interview: InterviewId) -> Option<String> {
        self.cluster.session_node(interview).await?.url
    }

    /// The nodes in the registry (none without Redis), and which one this is.
    pub async fn nodes(&self) -> (Vec<NodeEntry>, String) {
        (self.cluster.nodes().await, self.cluster.id().to_string())
    }

    fn claims(&self) -> Vec<(UserId, InterviewId)> {
        self.registry().by_user.iter().map(|(u, i)| (*u, *i)).collect()
    }

    /// Renews this node's registry entry and claims.
    async fn beat(&self) {
        self.cluster.beat(&self.claims(), self.is_draining()).await;
    }

    fn claim_here(self: &Arc<Self>, user: UserId, interview: InterviewId) -> Result<Claim, ClaimRefused> {
        if self.is_draining() {
            return Err(ClaimRefused::Draining);
        }
        let mut registry = self.registry();
        if registry.by_user.contains_key(&user) || registry.sessions.contains_key(&interview) {
            return Err(ClaimRefused::AlreadyLive);
        }
        let limit = self.config.max_live_sessions;
        if limit > 0 && registry.by_user.len() >= limit {
            return Err(ClaimRefused::NodeFull(limit));
        }
        registry.by_user.insert(user, interview);
        Ok(Claim { live: self.clone(), user, interview, taken: false })
    }

    /// The session now holds the claim; it releases it when it ends.
    fn register(&self, mut claim: Claim, session: Arc<Session>) {
        claim.taken = true;
        let mut registry = self.registry();
        registry.sessions.insert(claim.interview, session);
        self.count_sessions(&registry);
    }

    fn release(&self, user: UserId, interview: InterviewId) {
        if let (true, Ok(runtime)) = (self.cluster.is_shared(), tokio::runtime::Handle::try_current()) {
            let cluster = self.cluster.clone();
            runtime.spawn(async move { cluster.release(user, interview).await });
        }
        let mut registry = self.registry();
        if registry.by_user.get(&user) == Some(&interview) {
            registry.by_user.remove(&user);
        }
        registry.sessions.remove(&interview);
        self.count_sessions(&registry);
    }

    fn count_sessions(&self, registry: &Registry) {
        self.metrics.live_sessions.set(i64::try_from(registry.sessions.len()).unwrap_or(i64::MAX));
        self.live_count.send_replace(registry.sessions.len());
    }

    /// The user's own live session of this interview, which joining again rejoins (after a drop) or takes over
    /// (a reloaded page); none when rejoining is off (`rejoin_grace_secs` 0).
    pub fn rejoinable(&self, user: UserId, interview: InterviewId) -> Option<Arc<Session>> {
        let session = self.session(interview).filter(|s| s.user == user && !s.is_ended())?;
        (self.config.rejoin_grace_secs > 0).then_some(session)
    }

    /// The live candidate session of an interview, for observers.
    pub fn session(&self, interview: InterviewId) -> Option<Arc<Session>> {
        self.registry().sessions.get(&interview).cloned()
    }

    /// Server shutdown, first part: no new session starts here (joining is refused with `server_draining`,
    /// readiness fails so traffic goes elsewhere), and running interviews get up to `grace` to end on their own.
    /// Candidates whose connection drops meanwhile may still rejoin theirs.
    pub async fn drain(&self, grace: std::time::Duration) {
        self.draining.store(true, std::sync::atomic::Ordering::SeqCst);
        self.beat().await;
        if grace.is_zero() {
            return;
        }
        tracing::info!(sessions = self.live_sessions(), grace_secs = grace.as_secs(), "draining: running interviews may finish");
        let mut count = self.live_count.subscribe();
        let _ = tokio::time::timeout(grace, count.wait_for(|n| *n == 0)).await;
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Server shutdown, last part: every live session left stores where it stands and closes, all at once; its
    /// interview resumes when the candidate joins again (here after a restart, or on another server).
    /// `reason` is what signaling tells the client: `server_restarting`, or `server_draining` after a drain.
    pub async fn shutdown(&self, reason: &'static str) {
        let claims = self.claims();
        let sessions: Vec<Arc<Session>> = self.registry().sessions.values().cloned().collect();
        futures_util::future::join_all(sessions.iter().map(|session| session.interrupt(reason))).await;
        self.cluster.leave(&claims).await;
    }

    /// Number of live candidate sessions.
    pub fn live_sessions(&self) -> usize {
        self.registry().sessions.len()
    }
}
