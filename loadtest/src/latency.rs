//! Voice-to-voice latency as the candidate experiences it: from the end of their voiced audio as sent to the
//! first voiced interviewer audio that comes back. Voiced means a 20 ms frame above `VOICED_DBFS`; a voice ends
//! (or starts again) only after `GAP_MS` without one, so pauses between words do not count.

use std::time::{Duration, Instant};

const VOICED_DBFS: f32 = -45.0;
const GAP_MS: u64 = 400;
/// A reply later than this is not a reply to that turn (the interviewer was waiting, or the turn went on).
const LONGEST_REPLY: Duration = Duration::from_secs(8);

fn voiced(frame: &[f32]) -> bool {
    if frame.is_empty() {
        return false;
    }
    let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    10.0 * power.max(1e-12).log10() > VOICED_DBFS
}

/// Where the voice in `pcm` ends, in milliseconds from its start.
pub fn voice_ends_ms(pcm: &[f32], rate: u32) -> Vec<u64> {
    let frame = (rate as usize / 50).max(1);
    let mut ends = Vec::new();
    let mut last_voiced: Option<u64> = None;
    for (index, chunk) in pcm.chunks(frame).enumerate() {
        let at = index as u64 * 20;
        if voiced(chunk) {
            last_voiced = Some(at + 20);
        } else if let Some(end) = last_voiced
            && at >= end + GAP_MS
        {
            ends.push(end);
            last_voiced = None;
        }
    }
    ends.extend(last_voiced);
    ends
}

/// Follows received audio frame by frame, to tell when a voice starts after a gap.
#[derive(Debug, Default)]
pub struct Onsets {
    last_voiced: Option<Instant>,
}

impl Onsets {
    /// True when this frame, received `now`, starts a voice.
    pub fn frame(&mut self, pcm: &[f32], now: Instant) -> bool {
        if !voiced(pcm) {
            return false;
        }
        let onset = self.last_voiced.is_none_or(|last| now.duration_since(last) >= Duration::from_millis(GAP_MS));
        self.last_voiced = Some(now);
        onset
    }
}

/// For each end of the candidate's voice, the wait until the interviewer's voice started, if it started before
/// the candidate's next end and within `LONGEST_REPLY`.
pub fn voice_to_voice(ends: &[Instant], onsets: &[Instant]) -> Vec<Duration> {
    ends.iter()
        .enumerate()
        .filter_map(|(i, end)| {
            let next_end = ends.get(i + 1).copied();
            let onset = onsets.iter().find(|o| *o > end && next_end.is_none_or(|n| **o < n))?;
            let wait = onset.duration_since(*end);
            (wait <= LONGEST_REPLY).then_some(wait)
        })
        .collect()
}

/// The `q` quantile (0-1) of `values`, nearest rank.
pub fn quantile(values: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize) -> Vec<f32> {
        (0..ms * 48).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect()
    }

    #[test]
    fn a_voice_ends_after_a_real_gap_not_between_words() {
        let mut pcm = tone(1000);
        pcm.extend(vec![0.0; 48 * 200]); // a pause between words
        pcm.extend(tone(500));
        pcm.extend(vec![0.0; 48 * 1000]);
        pcm.extend(tone(300));
        assert_eq!(voice_ends_ms(&pcm, 48_000), vec![1700, 3000]);
    }

    #[test]
    fn each_turn_pairs_with_the_first_reply_before_the_next_turn() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut onsets = Onsets::default();
        assert!(!onsets.frame(&[0.0; 960], at(50)));
        let started: Vec<Instant> = [100, 120, 900, 920, 5000].into_iter().map(at).filter(|t| onsets.frame(&tone(20), *t)).collect();
        assert_eq!(started, vec![at(100), at(900), at(5000)]);
        // Turn one ends at 600 (reply at 900); turn two ends at 4000, replied at 5000; turn three gets none.
        let waits = voice_to_voice(&[at(600), at(4000), at(20_000)], &started);
        assert_eq!(waits, vec![Duration::from_millis(300), Duration::from_millis(1000)]);
        assert_eq!(quantile(&waits, 0.5), Some(Duration::from_millis(300)));
        assert_eq!(quantile(&waits, 0.9), Some(Duration::from_millis(1000)));
    }
}
