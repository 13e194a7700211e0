//! Turn-taking: decides when the candidate has finished speaking, from voice activity per chunk and the words
//! recognised so far.
//!
//! The candidate's turn starts after `start_speech_ms` of voice. It ends after `end_silence_ms` of silence
//! (default 600 ms), once at least `min_speech_ms` was spoken; but when the last words signal an unfinished
//! thought (a filler, a conjunction such as "and", "so", "because", or a list in progress), the silence needed
//! grows to `hesitant_silence_ms`. Cutting in on hesitant speakers is the top complaint about voice agents.
//! Every decision carries its reason, for logs and metrics.

use std::collections::VecDeque;

use super::{TimedWord, normalize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnConfig {
    /// Voice needed to open a turn (shorter bursts are clicks and coughs).
    pub start_speech_ms: u64,
    /// Voice needed before silence may end a turn.
    pub min_speech_ms: u64,
    pub end_silence_ms: u64,
    pub hesitant_silence_ms: u64,
    /// VAD probability that counts as voice to open a turn, and the lower one that keeps it open (hysteresis).
    pub speech_threshold: f32,
    pub keep_threshold: f32,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            start_speech_ms: 96,
            min_speech_ms: 250,
            end_silence_ms: 600,
            hesitant_silence_ms: 1600,
            speech_threshold: 0.5,
            keep_threshold: 0.35,
        }
    }
}

/// Why the detector waited longer before ending a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hesitation {
    Filler,
    Conjunction,
    List,
}

impl Hesitation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filler => "filler",
            Self::Conjunction => "conjunction",
            Self::List => "list",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// Voice began at `at_ms`.
    Started { at_ms: u64 },
    /// The turn ended when the voice stopped at `at_ms`; it was decided `silence_ms` later. `waited_for` says
    /// why the detector waited longer than the plain threshold, if it did.
    Ended { at_ms: u64, speech_ms: u64, silence_ms: u64, waited_for: Option<Hesitation> },
    /// A short burst that never became a turn.
    Discarded { at_ms: u64 },
}

const FILLERS: &[&str] = &["um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "mm", "ah"];
const CONJUNCTIONS: &[&str] = &[
    "and", "but", "so", "because", "or", "then", "which", "that", "if", "when", "while", "although", "like", "to",
    "the", "a", "an", "of", "with", "for", "my", "our", "also", "since", "until", "where",
];
const LIST_CUES: &[&str] = &["first", "firstly", "second", "secondly", "third", "thirdly", "next", "another"];

/// Does the text end on an unfinished thought?
pub fn hesitation(words: &[TimedWord]) -> Option<Hesitation> {
    let last = words.last()?;
    let word = normalize(&last.text);
    if FILLERS.contains(&word.as_str()) {
        Some(Hesitation::Filler)
    } else if CONJUNCTIONS.contains(&word.as_str()) {
        Some(Hesitation::Conjunction)
    } else if last.text.ends_with(',') || LIST_CUES.contains(&word.as_str()) {
        Some(Hesitation::List)
    } else {
        None
    }
}

enum State {
    Idle { voiced_ms: u64 },
    Speaking { start_ms: u64, speech_ms: u64, last_voice_ms: u64 },
}

pub struct TurnDetector {
    config: TurnConfig,
    state: State,
    words: Vec<TimedWord>,
    events: VecDeque<TurnEvent>,
}

impl TurnDetector {
    pub fn new(config: TurnConfig) -> Self {
        Self { config, state: State::Idle { voiced_ms: 0 }, words: Vec::new(), events: VecDeque::new() }
    }

    pub fn is_speaking(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// The words recognised so far in the current turn (each partial transcript replaces the last).
    pub fn handle_words(&mut self, words: &[TimedWord]) {
        self.words = words.to_vec();
    }

    /// One VAD chunk that ended at `end_ms` and lasted `duration_ms`, with its speech probability.
    pub fn handle_vad(&mut self, end_ms: u64, duration_ms: u64, probability: f32) {
        let config = self.config;
        match &mut self.state {
            State::Idle { voiced_ms } => {
                if probability >= config.speech_threshold {
                    *voiced_ms += duration_ms;
                    if *voiced_ms >= config.start_speech_ms {
                        let start_ms = end_ms.saturating_sub(*voiced_ms);
                        self.state = State::Speaking { start_ms, speech_ms: *voiced_ms, last_voice_ms: end_ms };
                        self.words.clear();
                        self.events.push_back(TurnEvent::Started { at_ms: start_ms });
                    }
                } else {
                    *voiced_ms = 0;
                }
            }
            State::Speaking { start_ms, speech_ms, last_voice_ms } => {
                if probability >= config.keep_threshold {
                    *speech_ms += duration_ms;
                    *last_voice_ms = end_ms;
                    return;
                }
                let silence_ms = end_ms.saturating_sub(*last_voice_ms);
                if *speech_ms < config.min_speech_ms {
                    if silence_ms >= config.end_silence_ms {
                        self.events.push_back(TurnEvent::Discarded { at_ms: *start_ms });
                        self.state = State::Idle { voiced_ms: 0 };
                    }
                    return;
                }
                let waited_for = hesitation(&self.words);
                let needed = if waited_for.is_some() { config.hesitant_silence_ms } else { config.end_silence_ms };
                if silence_ms >= needed {
                    self.events.push_back(TurnEvent::Ended {
                        at_ms: *last_voice_ms,
                        speech_ms: *speech_ms,
                        silence_ms,
                        waited_for,
                    });
                    self.state = State::Idle { voiced_ms: 0 };
                }
            }
        }
    }

    /// While a turn is open and long enough to count: when the voice last stopped. Lets work the end of the
    /// turn will need start before it is decided.
    pub fn last_voice_ms(&self) -> Option<u64> {
        let State::Speaking { speech_ms, last_voice_ms, .. } = self.state else { return None };
        (speech_ms >= self.config.min_speech_ms).then_some(last_voice_ms)
    }

    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: u64 = 32;

    /// Plays a timeline of (duration ms, probability) segments in 32 ms chunks, with the words known at each
    /// time; returns every event with the time it was emitted.
    fn play(timeline: &[(u64, f32)], words_at: &[(u64, &str)]) -> Vec<(u64, TurnEvent)> {
        let mut detector = TurnDetector::new(TurnConfig::default());
        let mut t = 0;
        let mut out = Vec::new();
        for &(duration, probability) in timeline {
            for _ in 0..duration / CHUNK {
                t += CHUNK;
                let known: Vec<TimedWord> = words_at
                    .iter()
                    .filter(|(at, _)| *at <= t)
                    .map(|(at, w)| TimedWord::new(w, at.saturating_sub(300), *at))
                    .collect();
                detector.handle_words(&known);
                detector.handle_vad(t, CHUNK, probability);
                while let Some(event) = detector.poll_event() {
                    out.push((t, event));
                }
            }
        }
        out
    }

    fn ended(events: &[(u64, TurnEvent)]) -> Vec<(u64, Option<Hesitation>)> {
        events
            .iter()
            .filter_map(|(t, e)| match e {
                TurnEvent::Ended { waited_for, .. } => Some((*t, *waited_for)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_clean_answer_ends_after_about_six_hundred_milliseconds_of_silence() {
        let events = play(&[(320, 0.0), (3200, 0.9), (1500, 0.05)], &[(3000, "done.")]);
        assert!(matches!(events[0].1, TurnEvent::Started { at_ms } if (288..=352).contains(&at_ms)));
        let ends = ended(&events);
        assert_eq!(ends.len(), 1);
        let (decided, waited) = ends[0];
        assert_eq!(waited, None);
        assert!((3520 + 600..=3520 + 640).contains(&decided), "decided at {decided}");
    }

    #[test]
    fn a_hesitant_speaker_gets_more_time_after_a_filler_or_a_conjunction() {
        for last in ["um", "because", "and", "first,"] {
            // 1 s of thinking after the hesitation, then more speech, then a real end.
            let events =
                play(&[(3200, 0.9), (1000, 0.05), (2000, 0.9), (1000, 0.05)], &[(3100, last), (6000, "result.")]);
            let ends = ended(&events);
            assert_eq!(ends.len(), 1, "{last}: cut in during the hesitation: {events:?}");
            assert!(ends[0].0 > 6200, "{last}");
        }
    }

    #[test]
    fn a_long_pause_mid_answer_still_ends_the_turn_eventually() {
        let events = play(&[(3200, 0.9), (2500, 0.05)], &[(3100, "so")]);
        let ends = ended(&events);
        assert_eq!(ends, [(3200 + 1600, Some(Hesitation::Conjunction))]);
    }

    #[test]
    fn a_cough_is_discarded_not_a_turn() {
        let events = play(&[(160, 0.9), (1000, 0.0)], &[]);
        assert!(matches!(events.as_slice(), [(_, TurnEvent::Started { .. }), (_, TurnEvent::Discarded { .. })]));
        assert!(play(&[(64, 0.9), (1000, 0.0)], &[]).is_empty(), "too short to even start");
    }

    #[test]
    fn brief_dips_in_probability_do_not_end_a_turn() {
        let timeline = [(1000, 0.9), (96, 0.4), (1000, 0.9), (320, 0.1), (1000, 0.9), (800, 0.0)];
        assert_eq!(ended(&play(&timeline, &[])).len(), 1);
    }
}
