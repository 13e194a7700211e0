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

/// Fails with `TooLarge` when `text` is longer than `MAX_MESSAGE_BYTES`.
pub fn check_size(text: &str) -> Result<(), crate::ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        Err(crate::ProtocolError::TooLarge { size: text.len(), limit: MAX_MESSAGE_BYTES })
    } else {
        Ok(())
    }
}
