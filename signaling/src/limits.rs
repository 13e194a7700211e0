//! Size limits, checked before any parsing so a hostile peer cannot make the server allocate or scan much.

/// Largest signaling or data-channel message. A browser offer with audio, video, a data channel and a dozen
/// candidates is 5-10 KiB; 64 KiB leaves room for many codecs and candidates and still bounds the work.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest ICE candidate line; real ones are under 200 bytes.
pub const MAX_CANDIDATE_BYTES: usize = 1024;

/// Largest typed answer (`answer.text`): a long spoken answer is 2,000-4,000 characters.
pub const MAX_ANSWER_TEXT_CHARS: usize = 10_000;

/// Candidates a client may trickle before its offer is applied; more are refused.
pub const MAX_EARLY_CANDIDATES: usize = 64;

/// Media sections an offer may have: audio, video and data, plus a few a client adds and the server rejects.
pub const MAX_MEDIA_SECTIONS: usize = 8;

/// Messages a client may send in a burst, and per second after it (signaling and data-channel messages alike:
/// a person's clicks and a browser's trickle are far below either).
pub const MESSAGE_BURST: f64 = 100.0;
pub const MESSAGES_PER_SECOND: f64 = 50.0;
/// Refused messages after which the connection is closed, unless it slowed down in between (its bucket refilled
/// to half): a flood, not a burst.
pub const REFUSALS_BEFORE_CLOSE: u32 = 500;

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateVerdict {
    Allow,
    /// Drop it; `tell` once per run of refusals (and every hundredth), so a flood gets errors without the
    /// server flooding back.
    Refuse { tell: bool },
    /// Close the connection: it kept sending past the limit.
    Close,
}

/// A token bucket per connection; pure (the caller passes the clock).
#[derive(Debug, Clone)]
pub struct MessageRate {
    tokens: f64,
    last_ms: u64,
    refused: u32,
}

impl Default for MessageRate {
    fn default() -> Self {
        Self { tokens: MESSAGE_BURST, last_ms: 0, refused: 0 }
    }
}

impl MessageRate {
    pub fn check(&mut self, now_ms: u64) -> RateVerdict {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * MESSAGES_PER_SECOND).min(MESSAGE_BURST);
        if self.tokens >= MESSAGE_BURST / 2.0 {
            self.refused = 0; // the client slowed down
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return RateVerdict::Allow;
        }
        self.refused += 1;
        if self.refused >= REFUSALS_BEFORE_CLOSE {
            RateVerdict::Close
        } else {
            RateVerdict::Refuse { tell: self.refused % 100 == 1 }
        }
    }
}

/// Fails with `TooLarge` when `text` is longer than `MAX_MESSAGE_BYTES`.
pub fn check_size(text: &str) -> Result<(), crate::ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        Err(crate::ProtocolError::TooLarge { size: text.len(), limit: MAX_MESSAGE_BYTES })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_a_steady_rate_passes_and_a_flood_is_told_then_closed() {
        let mut rate = MessageRate::default();
        assert!((0..100).all(|_| rate.check(0) == RateVerdict::Allow), "a burst of 100");
        assert_eq!(rate.check(0), RateVerdict::Refuse { tell: true });
        assert_eq!(rate.check(0), RateVerdict::Refuse { tell: false }, "told once, not per message");
        // 50 a second for a minute: all allowed.
        let mut rate = MessageRate::default();
        assert!((0..3_000u64).all(|i| rate.check(i * 20) == RateVerdict::Allow));
        // 10,000 in a second: refused after the burst, closed once the flood goes on.
        let mut rate = MessageRate::default();
        let verdicts: Vec<RateVerdict> = (0..10_000u64).map(|i| rate.check(i / 10)).collect();
        let close = verdicts.iter().position(|v| *v == RateVerdict::Close).expect("closed");
        assert!(close > 100 && close < 1_000, "closed at {close}");
        assert!(verdicts[..close].iter().filter(|v| matches!(v, RateVerdict::Refuse { tell: true })).count() >= 1);
        // A pause refills the bucket: a client that stops flooding is served again.
        let mut rate = MessageRate::default();
        (0..150).for_each(|_| {
            rate.check(0);
        });
        assert_eq!(rate.check(2_000), RateVerdict::Allow);
    }
}
