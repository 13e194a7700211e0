//! Per-client-IP rate limiting with fixed windows: at most `limit` requests per `window` seconds. Counters live in
//! memory on a single node, or in Redis when configured so every node shares them. If Redis fails the request is
//! let through (counted in `candor_rate_limit_total{decision="store_error"}`): an outage of the limiter must not
//! become an outage of the API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use redis::aio::ConnectionManager;


/// Past this many tracked clients the in-memory table drops the ones from earlier windows.
const MEMORY_SWEEP_THRESHOLD: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Rejected; the window resets in this many seconds.
    Reject {
        retry_after: u64,
    },
}

enum Counters {
    Memory(Mutex<HashMap<IpAddr, (u64, u32)>>),
    Redis { conn: ConnectionManager, prefix: String },
}

pub struct RateLimiter {
    limit: u32,
    window: u64,
    counters: Counters,
}

impl RateLimiter {
    /// `limit == 0` disables limiting.
    pub fn in_memory(limit: u32, window_secs: u64) -> Self {
        Self { limit, window: window_secs, counters: Counters::Memory(Mutex::new(HashMap::new())) }
    }

    pub fn redis(limit: u32, window_secs: u64, conn: ConnectionManager, prefix: &str) -> Self {
        Self { limit, window: window_secs, counters: Counters::Redis { conn, prefix: prefix.to_string() } }
    }

    /// Counts one request from `ip` at `now_secs` (Unix seconds) and decides.
    pub async fn check(&self, ip: IpAddr, now_secs: u64) -> Result<Decision, redis::RedisError> {
        if self.limit == 0 {
            return Ok(Decision::Allow);
        }
        let window_index = now_secs / self.window;
        let count = match &self.counters {
            Counters::Memory(table) => {
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
            Counters::Redis { conn, prefix } => {
                let key = format!("{prefix}:ratelimit:{ip}:{window_index}");
                let (count,): (u64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .expire(&key, i64::try_from(self.window).unwrap_or(i64::MAX))
                    .ignore()
                    .query_async(&mut conn.clone())
                    .await?;
                count
            }
        };
        if count <= u64::from(self.limit) {
            Ok(Decision::Allow)
        } else {
            let window_end = (window_index + 1) * self.window;
            Ok(Decision::Reject { retry_after: window_end.saturating_sub(now_secs).max(1) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn requests_past_the_limit_are_rejected_until_the_window_ends() {
        let limiter = RateLimiter::in_memory(2, 60);
        assert_eq!(limiter.check(IP, 120).await.unwrap(), Decision::Allow);
        assert_eq!(limiter.check(IP, 130).await.unwrap(), Decision::Allow);
        assert_eq!(limiter.check(IP, 170).await.unwrap(), Decision::Reject { retry_after: 10 });
        assert_eq!(limiter.check(IP, 180).await.unwrap(), Decision::Allow);
    }

    #[tokio::test]
    async fn clients_are_counted_apart() {
        let limiter = RateLimiter::in_memory(1, 60);
        let other: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(limiter.check(IP, 0).await.unwrap(), Decision::Allow);
        assert_eq!(limiter.check(other, 0).await.unwrap(), Decision::Allow);
        assert!(matches!(limiter.check(IP, 1).await.unwrap(), Decision::Reject { .. }));
    }

    #[tokio::test]
    async fn a_zero_limit_turns_limiting_off() {
        let limiter = RateLimiter::in_memory(0, 60);
        for t in 0..1000 {
            assert_eq!(limiter.check(IP, t).await.unwrap(), Decision::Allow);
        }
    }
}
