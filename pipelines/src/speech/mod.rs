//! Speech: what is measured from the candidate's voice and words. Every stage is sans-IO: it takes samples or
//! words with timestamps and is asked for results; none reads the clock.
//!
//! - `pitch`: fundamental frequency (YIN) of voiced frames, its mean and variability.
//! - `delivery`: pace, fillers, pauses and speaking time from timed words.
//! - `stt`: speech-to-text (whisper.cpp) with word timings.
//! - `text`: comparing transcripts (word error rate) and counting spoken words.
//! - `vad`: voice activity (Silero VAD v6) per 32 ms chunk.
//! - `pipeline`: all of the above for one stream: audio in, turns, transcripts and measurements out.
//! - `turn`: when the candidate has finished a turn, from voice activity and the last words.

pub mod delivery;
pub mod pipeline;
pub mod pitch;
pub mod stt;
pub mod text;
pub mod turn;
pub mod vad;

/// One recognised word with its timing, in milliseconds since the session started.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl TimedWord {
    pub fn new(text: &str, start_ms: u64, end_ms: u64) -> Self {
        Self { text: text.to_string(), start_ms, end_ms }
    }

    /// Lower case without surrounding punctuation: the form fillers and cue words are matched in.
    pub fn normalized(&self) -> String {
        normalize(&self.text)
    }
}

/// The words as one text, a space between each.
pub fn join(words: &[TimedWord]) -> String {
    words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn normalize(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase()
}
