//! The nodes sharing a Redis, and who is live on which. Three kinds of keys, each renewed by the node that wrote
//! it every heartbeat and expiring after three, so a node that dies drops out with everything it held:
//! - `{prefix}:node:{node}`: the node registry, `{"url", "sessions", "draining"}` (JSON);
//! - `{prefix}:live:{user}`: the user's one live session, `{node} {interview}`, so the rule holds across nodes;
//! - `{prefix}:session:{interview}`: the node running the interview's session, for observers.
//!
//! A claim held by a node that is no longer registered is stale and taken over. Without Redis, or while it is
//! down, each node keeps the rule for itself (logged when that changes); the heartbeat writes everything again
//! once Redis is back, even a Redis that lost its data.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::domain::{InterviewId, UserId};

/// Takes (or renews) a user's claim unless another node that is still registered holds it: nil when taken,
/// else the holder's `{node} {interview}`. KEYS: the user's claim, the interview's session key.
/// ARGV: `{node} {interview}`, this node, the TTL, the registry's key prefix.
const CLAIM: &str = r"
local held = redis.call('get', KEYS[1])
if held and held ~= ARGV[1] then
  local owner = string.match(held, '^(%S+)')
  if redis.call('exists', ARGV[4] .. owner) == 1 then return held end
end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
return false";

/// Gives a claim up, if it is still this node's (another may hold it after an expiry).
const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
if redis.call('get', KEYS[2]) == ARGV[2] then redis.call('del', KEYS[2]) end
return 0";

/// A node as the registry lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct NodeEntry {
    /// The node's id (random at each start).
    #[serde(default)]
    pub id: String,
    /// Where the other nodes reach it; none when it has no address to give (`CANDOR_NODE_URL`).
    pub url: Option<String>,
    /// Live interviews it runs, at its last heartbeat.
    pub sessions: usize,
    /// Shutting down: it takes no new session, its running ones go on.
    pub draining: bool,
}

/// Where a user's claim went.
#[derive(Debug, PartialEq, Eq)]
pub enum Claimed {
    /// This node holds it (or nothing is shared).
    Here,
    /// Another registered node holds it, for this interview or another.
    Elsewhere { node: String, interview: String },
}

pub struct Cluster {
    redis: Option<ConnectionManager>,
    prefix: String,
    /// This process, among the nodes.
    node: String,
    url: Option<String>,
    pub heartbeat: Duration,
    up: AtomicBool,
}

impl Cluster {
    /// `url`: this node's address for the others; `heartbeat`: how often it renews what it holds.
    pub fn new(redis: Option<ConnectionManager>, prefix: &str, url: Option<String>, heartbeat: Duration) -> Self {
        let node = uuid::Uuid::new_v4().simple().to_string();
        Self { redis, prefix: prefix.to_string(), node, url, heartbeat, up: AtomicBool::new(true) }
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    fn ttl_secs(&self) -> u64 {
        self.heartbeat.as_secs().max(1) * 3
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    fn user_key(&self, user: UserId) -> String {
        format!("{}:live:{user}", self.prefix)
    }

    fn session_key(&self, interview: InterviewId) -> String {
        format!("{}:session:{interview}", self.prefix)
    }

    fn value(&self, interview: InterviewId) -> String {
        format!("{} {interview}", self.node)
    }

    /// Claims `user`'s live session for `interview` on this node. Without Redis, or when it fails, the node's own
    /// rule is all there is: `Here`.
    pub async fn claim(&self, user: UserId, interview: InterviewId) -> Claimed {
        let Some(redis) = &self.redis else { return Claimed::Here };
        let held = redis::Script::new(CLAIM)
            .key(self.user_key(user))
            .key(self.session_key(interview))
            .arg(self.value(interview))
            .arg(&self.node)
            .arg(self.ttl_secs())
            .arg(self.node_key(""))
            .invoke_async::<Option<String>>(&mut redis.clone())
            .await;
        match self.answered(held).flatten() {
            None => Claimed::Here,
            Some(held) => {
                let (node, interview) = held.split_once(' ').unwrap_or((held.as_str(), ""));
                Claimed::Elsewhere { node: node.to_string(), interview: interview.to_string() }
            }
        }
    }

    /// Gives up the claim, if it is still this node's.
    pub async fn release(&self, user: UserId, interview: InterviewId) {
        let Some(redis) = &self.redis else { return };
        let released = redis::Script::new(RELEASE)
            .key(self.user_key(user))
            .key(self.session_key(interview))
            .arg(self.value(interview))
            .arg(&self.node)
            .invoke_async::<i64>(&mut redis.clone())
            .await;
        self.answered(released);
    }

    /// Renews this node's registry entry and its claims (writing them again if Redis lost them).
    pub async fn beat(&self, live: &[(UserId, InterviewId)], draining: bool) {
        let Some(redis) = &self.redis else { return };
        let entry = NodeEntry { id: String::new(), url: self.url.clone(), sessions: live.len(), draining };
        let json = serde_json::to_string(&entry).expect("a node entry serialises");
        let registered = redis::cmd("SET")
            .arg(self.node_key(&self.node))
            .arg(json)
            .arg("EX")
            .arg(self.ttl_secs())
            .query_async::<()>(&mut redis.clone())
            .await;
        if self.answered(registered).is_none() {
            return;
        }
        for &(user, interview) in live {
            if let Claimed::Elsewhere { node, .. } = self.claim(user, interview).await {
                tracing::warn!(%user, %interview, holder = %node, "another node took over this live session's claim");
            }
        }
    }

    /// Leaves the registry (the node is stopping): its entry and `live` claims go at once, not at expiry.
    pub async fn leave(&self, live: &[(UserId, InterviewId)]) {
        let Some(redis) = &self.redis else { return };
        for &(user, interview) in live {
            self.release(user, interview).await;
        }
        let removed = redis::cmd("DEL").arg(self.node_key(&self.node)).query_async::<i64>(&mut redis.clone()).await;
        self.answered(removed);
    }

    /// The registered node with this id, if it is still there.
    pub async fn node(&self, node: &str) -> Option<NodeEntry> {
        let redis = self.redis.as_ref()?;
        let json = redis::cmd("GET").arg(self.node_key(node)).query_async::<Option<String>>(&mut redis.clone()).await;
        let mut entry: NodeEntry = serde_json::from_str(&self.answered(json)??).ok()?;
        entry.id = node.to_string();
        Some(entry)
    }

    /// The node running `interview`'s session, when it is another registered node.
    pub async fn session_node(&self, interview: InterviewId) -> Option<NodeEntry> {
        let redis = self.redis.as_ref()?;
        let node = redis::cmd("GET")
            .arg(self.session_key(interview))
            .query_async::<Option<String>>(&mut redis.clone())
            .await;
        let node = self.answered(node)??;
        if node == self.node {
            return None;
        }
        self.node(&node).await
    }

    /// Every registered node, this one included; empty without Redis.
    pub async fn nodes(&self) -> Vec<NodeEntry> {
        let Some(redis) = &self.redis else { return Vec::new() };
        let mut conn = redis.clone();
        let mut ids = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let page = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.node_key("*"))
                .arg("COUNT")
                .arg(100)
                .query_async::<(u64, Vec<String>)>(&mut conn)
                .await;
            let Some((next, keys)) = self.answered(page) else { return Vec::new() };
            ids.extend(keys.into_iter().filter_map(|key| key.rsplit(':').next().map(str::to_string)));
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut nodes = Vec::new();
        for id in ids {
            nodes.extend(self.node(&id).await);
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes
    }

    pub fn id(&self) -> &str {
        &self.node
    }

    /// Notes whether Redis answered, logging each change; the answer, if any.
    fn answered<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis is back: the node registry and one live interview per user hold across nodes again");
                }
                Some(value)
            }
            Err(error) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %error, "Redis unreachable: this node works alone (one live interview per user on its own, no relaying)");
                }
                None
            }
        }
    }
}
