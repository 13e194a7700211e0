//! `VoicePacer`: queue interviewer audio as 20 ms Opus frames and release them in real time.
//!
//! Sans-IO: the caller pushes PCM, asks `poll_timeout()` when the next frame is due, and takes frames with
//! `poll_frame(now_ms)`. `stop()` (barge-in) drops everything queued at once, so at most the one frame already
//! handed out is still playing: silence follows within one frame.
//!
//! Encoding is `VoiceEncoder`'s: a caller that shares a pacer between tasks encodes a sentence first and only
//! then queues its frames (`queue`), so a barge-in's `stop()` never waits for an encoding to finish.

use std::collections::VecDeque;

use crate::audio::{OPUS_RATE, Resampler};

/// Samples in one 20 ms frame at 48 kHz.
const FRAME_SAMPLES: usize = OPUS_RATE as usize / 50;

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// Audio is never dropped silently: a caller that outruns playback by this much gets an error instead.
    #[error("voice queue full ({0} frames queued)")]
    QueueFull(usize),
}

/// Mono PCM at any rate to 20 ms Opus frames at 48 kHz.
pub struct VoiceEncoder {
    encoder: opus::Encoder,
    resampler: Option<(u32, Resampler)>,
    /// 48 kHz samples not yet making a whole frame.
    pending: Vec<f32>,
}

impl VoiceEncoder {
    pub fn new() -> Result<Self, VoiceError> {
        let mut encoder = opus::Encoder::new(OPUS_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        // Speech is clear at 32 kb/s; more only costs bandwidth.
        encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
        Ok(Self { encoder, resampler: None, pending: Vec::new() })
    }

    /// Encodes at `bits_per_second` instead of 32 kb/s.
    pub fn set_bitrate(&mut self, bits_per_second: i32) -> Result<(), VoiceError> {
        Ok(self.encoder.set_bitrate(opus::Bitrate::Bits(bits_per_second))?)
    }

    /// Sends in-band forward error correction sized for `percent` loss, as browsers do on lossy links: each
    /// packet also carries the one before it at a lower rate, so a single loss can be rebuilt.
    pub fn protect_against_loss(&mut self, percent: u8) -> Result<(), VoiceError> {
        self.encoder.set_inband_fec(percent > 0)?;
        self.encoder.set_packet_loss_perc(i32::from(percent.min(100)))?;
        Ok(())
    }

    /// Encodes one whole utterance or sentence: every frame of it, the last padded with silence.
    pub fn encode(&mut self, samples: &[f32], rate: u32) -> Result<Vec<Vec<u8>>, VoiceError> {
        let mut frames = self.push(samples, rate)?;
        frames.extend(self.finish()?);
        Ok(frames)
    }

    /// Mono PCM in [-1, 1] at `rate` Hz: the frames it completes.
    pub fn push(&mut self, samples: &[f32], rate: u32) -> Result<Vec<Vec<u8>>, VoiceError> {
        if rate == OPUS_RATE {
            self.pending.extend_from_slice(samples);
        } else {
            if self.resampler.as_ref().is_none_or(|(r, _)| *r != rate) {
                self.resampler = Some((rate, Resampler::new(rate, OPUS_RATE)));
            }
            let (_, resampler) = self.resampler.as_mut().expect("set just above");
            resampler.process(samples, &mut self.pending);
        }
        self.encode_whole_frames()
    }

    /// Ends an utterance: pads the last partial frame with silence so nothing said is left behind.
    pub fn finish(&mut self) -> Result<Vec<Vec<u8>>, VoiceError> {
        if !self.pending.is_empty() {
            let padded = self.pending.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
            self.pending.resize(padded, 0.0);
        }
        self.encode_whole_frames()
    }

    fn encode_whole_frames(&mut self) -> Result<Vec<Vec<u8>>, VoiceError> {
        let whole = self.pending.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        let mut frames = Vec::with_capacity(whole / FRAME_SAMPLES);
        for frame in self.pending[..whole].chunks_exact(FRAME_SAMPLES) {
            let mut packet = vec![0_u8; 1500];
            let len = self.encoder.encode_float(frame, &mut packet)?;
            packet.truncate(len);
            frames.push(packet);
        }
        self.pending.drain(..whole);
        Ok(frames)
    }
}

pub struct VoicePacer {
    encoder: VoiceEncoder,
    frames: VecDeque<Vec<u8>>,
    /// When the frame after the last one handed out is due.
    next_due_ms: Option<u64>,
}

impl VoicePacer {
    pub const FRAME_MS: u64 = 20;
    /// Two minutes of speech: far more than one utterance, small enough (about 100 KB) to bound memory.
    pub const MAX_QUEUED_FRAMES: usize = 6000;

    pub fn new() -> Result<Self, VoiceError> {
        Ok(Self { encoder: VoiceEncoder::new()?, frames: VecDeque::new(), next_due_ms: None })
    }

    /// See `VoiceEncoder::protect_against_loss`.
    pub fn protect_against_loss(&mut self, percent: u8) -> Result<(), VoiceError> {
        self.encoder.protect_against_loss(percent)
    }

    /// Encodes and queues mono PCM in [-1, 1] at `rate` Hz.
    pub fn push_pcm(&mut self, samples: &[f32], rate: u32) -> Result<(), VoiceError> {
        let frames = self.encoder.push(samples, rate)?;
        self.queue(frames)
    }

    /// Ends an utterance: pads the last partial frame with silence so nothing said is left behind.
    pub fn finish(&mut self) -> Result<(), VoiceError> {
        let frames = self.encoder.finish()?;
        self.queue(frames)
    }

    /// Queues frames encoded elsewhere (`VoiceEncoder`).
    pub fn queue(&mut self, frames: Vec<Vec<u8>>) -> Result<(), VoiceError> {
        if self.frames.len() + frames.len() > Self::MAX_QUEUED_FRAMES {
            return Err(VoiceError::QueueFull(self.frames.len()));
        }
        self.frames.extend(frames);
        Ok(())
    }

    /// The next frame if it is due at `now_ms`. After an idle gap the clock restarts at `now_ms`, so a new
    /// utterance is never sent in a burst to catch up.
    pub fn poll_frame(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        let due = match self.next_due_ms {
            Some(due) if due + Self::FRAME_MS >= now_ms => due,
            _ => now_ms,
        };
        if now_ms < due || self.frames.is_empty() {
            return None;
        }
        self.next_due_ms = Some(due + Self::FRAME_MS);
        self.frames.pop_front()
    }

    /// When `poll_frame` next has something: `None` while nothing is queued.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.frames.is_empty() { None } else { Some(self.next_due_ms.unwrap_or(0)) }
    }

    /// Barge-in: drops all queued audio. Returns how many frames were dropped.
    pub fn stop(&mut self) -> usize {
        let dropped = self.frames.len();
        self.frames.clear();
        self.encoder.pending.clear();
        dropped
    }

    /// Frames waiting to be sent.
    pub fn queued(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_second_at(rate: u32) -> Vec<f32> {
        (0..rate).map(|i| 0.3 * (i as f32 * 220.0 * std::f32::consts::TAU / rate as f32).sin()).collect()
    }

    #[test]
    fn a_second_of_audio_at_any_rate_is_fifty_frames() {
        for rate in [16_000, 22_050, 24_000, 48_000] {
            let mut pacer = VoicePacer::new().unwrap();
            pacer.push_pcm(&one_second_at(rate), rate).unwrap();
            pacer.finish().unwrap();
            assert!((50..=51).contains(&pacer.queued()), "{rate}: {}", pacer.queued());
        }
    }

    #[test]
    fn frames_are_released_every_twenty_milliseconds() {
        let mut pacer = VoicePacer::new().unwrap();
        pacer.push_pcm(&one_second_at(48_000), 48_000).unwrap();
        assert!(pacer.poll_frame(1000).is_some());
        assert!(pacer.poll_frame(1010).is_none(), "too early");
        assert_eq!(pacer.poll_timeout(), Some(1020));
        assert!(pacer.poll_frame(1020).is_some());
        // A late timer catches up by one frame, not more.
        assert!(pacer.poll_frame(1045).is_some());
        assert!(pacer.poll_frame(1045).is_none());
    }

    #[test]
    fn stop_silences_within_one_frame() {
        let mut pacer = VoicePacer::new().unwrap();
        pacer.push_pcm(&one_second_at(24_000), 24_000).unwrap();
        assert!(pacer.poll_frame(0).is_some());
        assert!(pacer.stop() >= 40);
        assert!(pacer.poll_frame(20).is_none());
        assert_eq!(pacer.poll_timeout(), None);
        // The next utterance starts at once, with no burst to catch up.
        pacer.push_pcm(&one_second_at(24_000), 24_000).unwrap();
        assert!(pacer.poll_frame(5000).is_some());
        assert!(pacer.poll_frame(5000).is_none());
    }

    #[test]
    fn audio_past_the_queue_bound_is_an_error_not_a_silent_drop() {
        let mut pacer = VoicePacer::new().unwrap();
        let minute = one_second_at(48_000).repeat(60);
        pacer.push_pcm(&minute, 48_000).unwrap();
        pacer.push_pcm(&minute, 48_000).unwrap();
        assert!(matches!(pacer.push_pcm(&minute, 48_000), Err(VoiceError::QueueFull(_))));
    }
}
