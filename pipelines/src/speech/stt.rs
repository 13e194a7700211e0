//! Speech-to-text with whisper.cpp (whisper-rs). The model loads once per process (`SpeechToText`). Decoder
//! states (tens of megabytes each) are pooled and reused: a decode takes an idle one and gives it back, so their
//! number follows the decodes running at once (the inference workers), not the sessions. Calls block for tens
//! to hundreds of milliseconds, so callers run them on a worker pool, never on the async runtime.
//!
//! Short audio decodes faster when whisper's audio context shrinks to the audio actually present (50 encoder
//! frames per second); `transcribe` does that. Whisper tends to drop disfluencies, so the initial prompt is
//! written with fillers, which makes it keep "um" and "uh" (measured in the tests and the benchmark).

use std::path::Path;
use std::sync::Mutex;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use super::TimedWord;

/// Primes the decoder to transcribe disfluencies rather than clean them up.
pub const FILLER_PROMPT: &str = "Umm, so, uh, I was like, you know, thinking about it. Hmm, I mean, er, okay.";

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("speech-to-text model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("whisper: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
}

/// The loaded model and its idle decoder states, shared by every session.
pub struct SpeechToText {
    context: WhisperContext,
    idle: Mutex<Vec<WhisperState>>,
}

impl SpeechToText {
    /// Loads a ggml model. A missing, truncated or corrupt file is an error here, at start, not in a session.
    pub fn load(path: &Path) -> Result<Self, SttError> {
        let model = |reason: &str| SttError::Model { path: path.display().to_string(), reason: reason.to_string() };
        let metadata = std::fs::metadata(path).map_err(|e| model(&e.to_string()))?;
        if metadata.len() < 1024 * 1024 {
            return Err(model("too small to be a whisper model (truncated?)"));
        }
        whisper_rs::install_logging_hooks();
        let context = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| model(&format!("not a valid whisper.cpp model ({e})")))?;
        let stt = Self { idle: Mutex::new(vec![context.create_state()?]), context };
        // One decode now: a file that parses but does not decode fails here, and whisper.cpp sets up its lazy
        // internals before any session (and before the inference pool's exit handler, see candor's pool).
        stt.transcribe(&[0.0; 16_000], 0, &SttOptions { threads: 1, prompt: None })
            .map_err(|e| model(&format!("does not decode ({e})")))?;
        Ok(stt)
    }

    /// Transcribes 16 kHz mono PCM that starts `offset_ms` into the session; word times are session times.
    pub fn transcribe(&self, pcm: &[f32], offset_ms: u64, options: &SttOptions) -> Result<Transcript, SttError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut state = match idle {
            Some(state) => state,
            None => self.context.create_state()?,
        };
        let result = transcribe(&mut state, pcm, offset_ms, options);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(state);
        result
    }

    /// Decoder states made so far (idle ones; the rest are decoding).
    pub fn idle_states(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub words: Vec<TimedWord>,
}

#[derive(Debug, Clone)]
pub struct SttOptions {
    pub threads: usize,
    /// Text that conditions the decoder (fillers, or the question being answered).
    pub prompt: Option<String>,
}

impl Default for SttOptions {
    fn default() -> Self {
        Self { threads: 2, prompt: Some(FILLER_PROMPT.to_string()) }
    }
}

fn transcribe(
    state: &mut WhisperState,
    pcm: &[f32],
    offset_ms: u64,
    options: &SttOptions,
) -> Result<Transcript, SttError> {
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(options.threads.max(1) as i32);
    params.set_language(Some("en"));
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    params.set_token_timestamps(true);
    params.set_no_context(true);
    params.set_single_segment(false);
    params.set_temperature_inc(0.0);
    if let Some(prompt) = &options.prompt {
        params.set_initial_prompt(prompt);
    }
    // 50 encoder frames per second of audio, plus a second of margin, in steps of 64 (the encoder's
    // convolution needs a multiple of its stride; smaller contexts than ~6 s lose accuracy).
    let seconds = pcm.len() as f32 / 16_000.0;
    let frames = (((seconds + 1.0) * 50.0) as u32).div_ceil(64) as i32 * 64;
    params.set_audio_ctx(frames.clamp(384, 1500));
    // whisper.cpp needs at least one second; pad short clips with silence.
    let mut padded;
    let audio = if pcm.len() < 16_000 {
        padded = pcm.to_vec();
        padded.resize(16_000 + 1600, 0.0);
        &padded[..]
    } else {
        pcm
    };
    state.full(params, audio)?;
    Ok(collect(state, offset_ms))
}

fn collect(state: &WhisperState, offset_ms: u64) -> Transcript {
    let mut text = String::new();
    let mut words: Vec<TimedWord> = Vec::new();
    for segment in state.as_iter() {
        for index in 0..segment.n_tokens() {
            let Some(token) = segment.get_token(index) else { continue };
            let Ok(piece) = token.to_str_lossy() else { continue };
            let piece = piece.to_string();
            if piece.starts_with("[_") || piece.starts_with("<|") {
                continue; // special tokens: timestamps, end of text
            }
            let data = token.token_data();
            let (start, end) = (offset_ms + data.t0.max(0) as u64 * 10, offset_ms + data.t1.max(0) as u64 * 10);
            text.push_str(&piece);
            let continues_word = !piece.starts_with(' ') && !words.is_empty();
            match words.last_mut() {
                Some(word) if continues_word => {
                    word.text.push_str(&piece);
                    word.end_ms = end.max(word.end_ms);
                }
                _ => {
                    let trimmed = piece.trim();
                    if !trimmed.is_empty() {
                        words.push(TimedWord::new(trimmed, start, end.max(start)));
                    }
                }
            }
        }
    }
    words.retain(|w| w.text.chars().any(char::is_alphanumeric));
    Transcript { text: text.trim().to_string(), words }
}

/// Word error rate of `hypothesis` against `reference`: edits (substitutions, insertions, deletions) per
/// reference word, compared case- and punctuation-insensitively.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f32 {
    let words = |s: &str| s.split_whitespace().map(super::normalize).filter(|w| !w.is_empty()).collect::<Vec<_>>();
    let (r, h) = (words(reference), words(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut current = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = previous[j] + usize::from(rw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[h.len()] as f32 / r.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_rate_counts_edits_per_reference_word() {
        assert_eq!(word_error_rate("the cat sat", "The cat sat."), 0.0);
        assert!((word_error_rate("the cat sat down", "the cat sat") - 0.25).abs() < 1e-6);
        assert!((word_error_rate("a b", "x b c") - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_missing_or_truncated_model_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("candor-stt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = SpeechToText::load(&dir.join("nope.bin")).err().unwrap();
        assert!(missing.to_string().contains("nope.bin"));
        let truncated = dir.join("truncated.bin");
        std::fs::write(&truncated, b"ggml").unwrap();
        assert!(SpeechToText::load(&truncated).err().unwrap().to_string().contains("truncated"));
        let garbage = dir.join("garbage.bin");
        std::fs::write(&garbage, vec![7_u8; 2 * 1024 * 1024]).unwrap();
        assert!(SpeechToText::load(&garbage).err().unwrap().to_string().contains("not a valid whisper.cpp model"));
    }
}
