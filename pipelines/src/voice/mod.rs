//! The interviewer's voice on its way out: PCM at any rate is resampled to 48 kHz, cut into 20 ms frames,
//! Opus-encoded and released one frame per 20 ms by `VoicePacer`, which the caller drives with timestamps.

mod pacer;

pub use pacer::{VoiceError, VoicePacer};
