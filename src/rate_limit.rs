//! Per-client-IP rate limiting with fixed windows: at most `limit` requests per `window` seconds. Counters live in
//! memory on a single node, or in Redis when configured so every node shares them. When Redis fails, the node
//! counts on its own until Redis is back (a single node's behaviour, counted in
//! `candor_rate_limit_total{decision="store_error"}`), and leaves Redis alone for a few seconds after each
//! failure so that requests are not slowed by it: an outage of the limiter must not become an outage of the API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redis::aio::ConnectionManager;

/// Past this many tracked clients the in-memory table drops the ones from earlier windows.
const MEMORY_SWEEP_THRESHOLD: usize = 10_000;

/// After Redis fails, it is tried again this many seconds later.
const REDIS_REST_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Rejected; the window resets in this many seconds.
    Reject {
        retry_after: u64,
    },
}

/// A decision, and whether it was made on this node alone because Redis failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub degraded: bool,
}

/// Per client IP: (window index, requests in it).
type Table = Mutex<HashMap<IpAddr, (u64, u32)>>;

enum Counters {
    Memory(Table),
    Redis {
        conn: ConnectionManager,
        prefix: String,
        /// This node's own counts, while Redis is away.
        here: Table,
        /// Unix seconds before which Redis is not tried (it failed just before).
        resting_until: AtomicU64,
        up: AtomicBool,
    },
}

pub struct RateLimiter {
    limit: u32,
    window: u64,
    counters: Counters,
}

impl RateLimiter {
    /// `limit == 0` disables limiting.
    pub fn in_memory(limit: u32, window_secs: u64) -> Self {
        Self { limit, window: window_secs, counters: Counters::Memory(Mutex::default()) }
    }

    pub fn redis(limit: u32, window_secs: u64, conn: ConnectionManager, prefix: &str) -> Self {
        let counters = Counters::Redis {
            conn,
            prefix: prefix.to_string(),
            here: Mutex::default(),
            resting_until: AtomicU64::new(0),
            up: AtomicBool::new(true),
        };
        Self { limit, window: window_secs, counters }
    }

    /// Whether Redis answered last time it was asked; `None` without Redis.
    pub fn redis_up(&self) -> Option<bool> {
        match &self.counters {
            Counters::Memory(_) => None,
            Counters::Redis { up, .. } => Some(up.load(Ordering::Relaxed)),
        }
    }

    /// Counts one request from `ip` at `now_secs` (Unix seconds) and decides.
    pub async fn check(&self, ip: IpAddr, now_secs: u64) -> Verdict {
        if self.limit == 0 {
            return Verdict { decision: Decision::Allow, degraded: false };
        }
        let window_index = now_secs / self.window;
        let (count, degraded) = match &self.counters {
            Counters::Memory(table) => (count_here(table, ip, window_index), false),
            Counters::Redis { conn, prefix, here, resting_until, up } => {
                let shared = if now_secs < resting_until.load(Ordering::Relaxed) {
                    None
                } else {
                    let key = format!("{prefix}:ratelimit:{ip}:{window_index}");
                    let counted: Result<(u64,), _> = redis::pipe()
                        .atomic()
                        .incr(&key, 1)
                        .expire(&key, i64::try_from(self.window).unwrap_or(i64::MAX))
                        .ignore()
                        .query_async(&mut conn.clone())
                        .await;
                    match counted {
                        Ok((count,)) => {
                            if !up.swap(true, Ordering::Relaxed) {
                                tracing::info!("Redis is back: rate limits are shared by every node again");
                            }
                            Some(count)
                        }
                        Err(error) => {
                            resting_until.store(now_secs + REDIS_REST_SECS, Ordering::Relaxed);
                            if up.swap(false, Ordering::Relaxed) {
                                tracing::warn!(error = %error, "Redis unreachable: rate limits count on this node alone until it is back");
                            }
                            None
                        }
                    }
                };
                match shared {
                    Some(count) => (count, false),
                    None => (count_here(here, ip, window_index), true),
                }
            }
        };
        let decision = if count <= u64::from(self.limit) {
            Decision::Allow
        } else {
            let window_end = (window_index + 1) * self.window;
            Decision::Reject { retry_after: window_end.saturating_sub(now_secs).max(1) }
        };
        Verdict { decision, degraded }
    }
}

/// Counts a request in this node's table; the count in the window so far.
fn count_here(table: &Table, ip: IpAddr, window_index: u64) -> u64 {
    let mut table = table.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if table.len() > MEMORY_SWEEP_THRESHOLD {
        table.retain(|_, (index, _)| *index == window_index);
    }
    let entry = table.entry(ip).or_insert((window_index, 0));
    if entry.0 != window_index {
        *entry = (window_index, 0);
    }
    entry.1 = entry.1.saturating_add(1);
    u64::from(entry.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn requests_past_the_limit_are_rejected_until_the_window_ends() {
        let limiter = RateLimiter::in_memory(2, 60);
        assert_eq!(limiter.check(IP, 120).await.decision, Decision::Allow);
        assert_eq!(limiter.check(IP, 130).await.decision, Decision::Allow);
        assert_eq!(limiter.check(IP, 170).await.decision, Decision::Reject { retry_after: 10 });
        assert_eq!(limiter.check(IP, 180).await.decision, Decision::Allow);
    }

    #[tokio::test]
    async fn clients_are_counted_apart() {
        let limiter = RateLimiter::in_memory(1, 60);
        let other: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(limiter.check(IP, 0).await.decision, Decision::Allow);
        assert_eq!(limiter.check(other, 0).await.decision, Decision::Allow);
        assert!(matches!(limiter.check(IP, 1).await.decision, Decision::Reject { .. }));
    }

    #[tokio::test]
    async fn a_zero_limit_turns_limiting_off() {
        let limiter = RateLimiter::in_memory(0, 60);
        for t in 0..1000 {
            assert_eq!(limiter.check(IP, t).await.decision, Decision::Allow);
        }
    }
}
