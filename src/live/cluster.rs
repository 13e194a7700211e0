//! Who is live across nodes. With Redis, each user's one live session is claimed there as well as on the node:
//! `{prefix}:live:{user}` holds `{node} {interview}` and expires unless the node holding it refreshes it, so the
//! rule holds across every node sharing the Redis, and a node that dies frees its users within `CLAIM_TTL_SECS`.
//! Without Redis, or while it is down, each node keeps the rule for itself (logged when that changes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::domain::{InterviewId, UserId};

/// How long a claim outlives the last refresh of the node holding it.
pub const CLAIM_TTL_SECS: u64 = 30;
/// How often a node refreshes its claims.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Deletes, or refreshes, a claim only while it is still this node's: another node may hold it after an expiry.
const DELETE_IF_OURS: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
const REFRESH_IF_OURS: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0";

pub struct Cluster {
    redis: Option<ConnectionManager>,
    prefix: String,
    /// This process, among the nodes.
    node: String,
    up: AtomicBool,
}

impl Cluster {
    pub fn new(redis: Option<ConnectionManager>, prefix: &str) -> Self {
        Self { redis, prefix: prefix.to_string(), node: uuid::Uuid::new_v4().simple().to_string(), up: AtomicBool::new(true) }
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    fn key(&self, user: UserId) -> String {
        format!("{}:live:{user}", self.prefix)
    }

    fn value(&self, interview: InterviewId) -> String {
        format!("{} {interview}", self.node)
    }

    /// Claims `user`'s live session for `interview` on this node: false when they are live on another node.
    /// Without Redis, or when it fails, the node's own rule is all there is: true.
    pub async fn claim(&self, user: UserId, interview: InterviewId) -> bool {
        let Some(redis) = &self.redis else { return true };
        let set = redis::cmd("SET")
            .arg(self.key(user))
            .arg(self.value(interview))
            .arg("NX")
            .arg("EX")
            .arg(CLAIM_TTL_SECS)
            .query_async::<Option<String>>(&mut redis.clone())
            .await;
        self.answered(set.map(|taken| taken.is_some())).unwrap_or(true)
    }

    /// Gives up the claim, if it is still this node's.
    pub async fn release(&self, user: UserId, interview: InterviewId) {
        let Some(redis) = &self.redis else { return };
        let deleted = redis::Script::new(DELETE_IF_OURS)
            .key(self.key(user))
            .arg(self.value(interview))
            .invoke_async::<i64>(&mut redis.clone())
            .await;
        self.answered(deleted);
    }

    /// Keeps this node's claims from expiring.
    pub async fn refresh(&self, live: &[(UserId, InterviewId)]) {
        let Some(redis) = &self.redis else { return };
        for &(user, interview) in live {
            let refreshed = redis::Script::new(REFRESH_IF_OURS)
                .key(self.key(user))
                .arg(self.value(interview))
                .arg(CLAIM_TTL_SECS)
                .invoke_async::<i64>(&mut redis.clone())
                .await;
            if self.answered(refreshed).is_none() {
                return;
            }
        }
    }

    /// Notes whether Redis answered, logging each change; the answer, if any.
    fn answered<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis is back: one live interview per user holds across nodes again");
                }
                Some(value)
            }
            Err(error) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %error, "Redis unreachable: each node keeps one live interview per user on its own");
                }
                None
            }
        }
    }
}
