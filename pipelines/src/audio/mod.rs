//! Audio: decode Opus packets to PCM, resample between rates, measure levels.

mod decode;
mod level;
mod resample;

pub use decode::{DecodeError, OpusDecoder};
pub use level::{LevelMeter, dbfs};
pub use resample::Resampler;

/// The rate WebRTC's Opus runs at.
pub const OPUS_RATE: u32 = 48_000;
/// The rate the speech pipelines (VAD, speech-to-text, prosody) work at.
pub const PIPELINE_RATE: u32 = 16_000;
