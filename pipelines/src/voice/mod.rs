//! The interviewer's voice: `tts` turns text into speech (Piper, or espeak-ng alone), `visemes` into mouth shapes
//! for avatars; on its way out, PCM at any
//! rate is resampled to 48 kHz, cut into 20 ms frames, Opus-encoded and released one frame per 20 ms by
//! `VoicePacer`, which the caller drives with timestamps.

mod pacer;
pub mod tts;
pub mod visemes;

pub use pacer::{VoiceEncoder, VoiceError, VoicePacer};

/// A short two-note chime (C5 then E5, 0.6 s, soft attack and release) at `rate` Hz: the greeting a session
/// plays as soon as media flows, until the interviewer has a voice of its own.
pub fn chime(rate: u32) -> Vec<f32> {
    let note = |freq: f32, seconds: f32| {
        let n = (rate as f32 * seconds) as usize;
        let ramp = (rate as f32 * 0.02) as usize;
        (0..n).map(move |i| {
            let envelope = (i.min(n - 1 - i) as f32 / ramp as f32).min(1.0);
            0.3 * envelope * (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin()
        })
    };
    note(523.25, 0.25).chain(note(659.25, 0.35)).collect()
}
