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

/// The samples of a 16-bit mono WAV file (what follows its `data` chunk header), or `None` without one.
pub fn wav_samples(wav: &[u8]) -> Option<Vec<f32>> {
    let data = wav.windows(4).position(|w| w == b"data").map(|at| at + 8).filter(|&at| at <= wav.len())?;
    Some(wav[data..].chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect())
}
