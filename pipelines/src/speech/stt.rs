//! Speech-to-text with whisper.cpp (whisper-rs). The model loads once per process (`SpeechToText`). Decoder
//! states (tens of megabytes each) are pooled and reused: a decode takes an idle one and gives it back, so their
//! number follows the decodes running at once (the inference workers), not the sessions. Calls block for tens
//! to hundreds of milliseconds, so callers run them on a worker pool, never on the async runtime.
//!
//! Whisper tends to drop disfluencies, so the decoder is prompted with a text full of fillers, which makes it
//! keep "um" and "uh" (measured in the tests and the benchmark).
//!
//! Short audio decodes faster when whisper's audio context (the encoder window, 50 frames per second) shrinks
//! to the audio actually present. But a short window with the filler prompt is what made live transcripts loop
//! ("try again. Try again. Try again..."): the prompt switches the decoder out of timestamp mode, and in a
//! window of a few seconds it no longer sees where the audio ends, so nothing stops it repeating itself (the
//! prompt's own fillers loop too: "um, um, um, um"). Measured on the real-speech test set, a decode without the
//! prompt in a window of 15 s or more never loops. So each decode runs first in the fitted window with the
//! prompt (`FAST_AUDIO_CTX`, cheap, keeps fillers), bounded to the tokens a person can say in that much audio,
//! and is decoded again carefully when it looks degenerate (`degenerate`: too many words for the audio, or a
//! phrase repeated back to back) or finds no word at all in a second or more of audio: without the prompt, in
//! `SAFE_AUDIO_CTX`, as one segment, with whisper's temperature fall-back; and if that still repeats itself (a
//! second of audio holding only "um"), in the whole window. Most decodes pay nothing extra; a loop costs a
//! decode or two more, and the repeated decode's fillers.
use std::path::Path;
use std::sync::{Arc, Mutex};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use super::{TimedWord, join};

/// Primes the decoder to transcribe disfluencies rather than clean them up.
pub const FILLER_PROMPT: &str = "Umm, so, uh, I was like, you know, thinking about it. Hmm, I mean, er, okay.";

/// The smallest audio context of a first decode (7.7 s): the window fitted to the audio plus a second.
const FAST_AUDIO_CTX: u32 = 384;
/// The smallest audio context of a decode repeated because the first looked degenerate (15.4 s).
const SAFE_AUDIO_CTX: u32 = 768;
/// Whisper's whole window, 30 s: what an offline decode uses.
const FULL_AUDIO_CTX: u32 = 1500;
/// Fast speech is about 4 words a second; more than this many per second of audio is a decoder running on.
const MAX_WORDS_PER_SECOND: f32 = 6.0;
/// Tokens the decoder may produce per second of audio, and the allowance every decode gets (words are 1-2
/// tokens; punctuation is one more). Bounds what a runaway decode costs before it is noticed.
const MAX_TOKENS_PER_SECOND: f32 = 10.0;
const MIN_TOKENS: f32 = 16.0;
/// Audio at least this long that a fast decode finds no word in is decoded again carefully.
const MIN_SECONDS_FOR_WORDS: f32 = 1.0;

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("speech-to-text model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("whisper: {0}")]
    Whisper(#[from] whisper_rs::WhisperError),
    /// The decode stopped part-way because its `GiveWay` said to.
    #[error("the decode gave way to more pressing work")]
    GaveWay,
}

/// The loaded model and its idle decoder states, shared by every session.
pub struct SpeechToText {
    context: WhisperContext,
    idle: Mutex<Vec<WhisperState>>,
    /// Where decodes run: `cpu`, `cuda (<device>)`, or `cpu` with why not the GPU.
    device: String,
}

impl SpeechToText {
    /// Loads a ggml model for the CPU. A missing, truncated or corrupt file is an error here, at start, not in a
    /// session.
    pub fn load(path: &Path) -> Result<Self, SttError> {
        Self::load_on(path, false)
    }

    /// Loads a ggml model, on the GPU when `gpu` and this build has whisper.cpp's CUDA backend and a device is
    /// there; otherwise on the CPU, and `device()` says why.
    pub fn load_on(path: &Path, gpu: bool) -> Result<Self, SttError> {
        let model = |reason: &str| SttError::Model { path: path.display().to_string(), reason: reason.to_string() };
        let metadata = std::fs::metadata(path).map_err(|e| model(&e.to_string()))?;
        if metadata.len() < 1024 * 1024 {
            return Err(model("too small to be a whisper model (truncated?)"));
        }
        whisper_rs::install_logging_hooks();
        let (use_gpu, device) = if gpu { gpu_device() } else { (false, "cpu".to_string()) };
        let mut params = WhisperContextParameters::default();
        params.use_gpu(use_gpu);
        let context = WhisperContext::new_with_params(path, params)
            .map_err(|e| model(&format!("not a valid whisper.cpp model ({e})")))?;
        let stt = Self { idle: Mutex::new(vec![context.create_state()?]), context, device };
        // One decode now: a file that parses but does not decode fails here, and whisper.cpp sets up its lazy
        // internals before any session (and before the inference pool's exit handler, see candor's pool).
        stt.transcribe(&[0.0; 16_000], 0, &SttOptions { threads: 1, prompt: None, ..SttOptions::default() })
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
        let result = self.decode_guarded(&mut state, pcm, offset_ms, options);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(state);
        result
    }

    /// A fast decode; if it looks degenerate a careful one; if that does too, one in the whole window.
    fn decode_guarded(
        &self,
        state: &mut WhisperState,
        pcm: &[f32],
        offset_ms: u64,
        options: &SttOptions,
    ) -> Result<Transcript, SttError> {
        let seconds = pcm.len() as f32 / 16_000.0;
        if options.full_window {
            return transcribe(state, pcm, offset_ms, options, Decode::Whole);
        }
        let fast = transcribe(state, pcm, offset_ms, options, Decode::Fast)?;
        // Nothing at all in audio long enough to hold words: the fitted window sometimes ends the decode at
        // once (a 6 s sentence of the test set, at 2 of 16 alignments a few ms apart). Callers decode only audio
        // the VAD found voice in, so this costs a second decode only on a cough or a breath.
        let heard_nothing = fast.words.is_empty() && seconds >= MIN_SECONDS_FOR_WORDS;
        if !heard_nothing && !degenerate(&fast.words, seconds) {
            return Ok(fast);
        }
        let careful = transcribe(state, pcm, offset_ms, options, Decode::Careful)?;
        let mut redecoded = if degenerate(&careful.words, seconds) {
            transcribe(state, pcm, offset_ms, options, Decode::Whole)?
        } else {
            careful
        };
        redecoded.redecoded = true;
        Ok(redecoded)
    }

    /// Where decodes run: `cpu`, `cuda (<device>)`, or `cpu (CUDA unavailable: <why>)`.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Decoder states made so far (idle ones; the rest are decoding).
    pub fn idle_states(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The GPU whisper.cpp would use: whether to ask for it, and how to report it.
#[cfg(feature = "whisper-cuda")]
fn gpu_device() -> (bool, String) {
    use whisper_rs::whisper_rs_sys as sys;
    // SAFETY: ggml's device registry is built once, at first use, and only read here; the name is a C string it
    // owns for the life of the process.
    let gpu = unsafe {
        (0..sys::ggml_backend_dev_count()).map(|i| sys::ggml_backend_dev_get(i)).find(|&dev| {
            sys::ggml_backend_dev_type(dev) == sys::ggml_backend_dev_type_GGML_BACKEND_DEVICE_TYPE_GPU
        })
    };
    match gpu {
        Some(dev) => {
            let name = unsafe { std::ffi::CStr::from_ptr(sys::ggml_backend_dev_name(dev)) };
            (true, format!("cuda ({})", name.to_string_lossy()))
        }
        None => (false, "cpu (CUDA unavailable: no CUDA device found)".into()),
    }
}

#[cfg(not(feature = "whisper-cuda"))]
fn gpu_device() -> (bool, String) {
    (false, "cpu (CUDA unavailable: this build has no CUDA support for whisper.cpp (build with --features gpu-whisper))".into())
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub words: Vec<TimedWord>,
    /// The first decode looked degenerate and this one was made in the larger window.
    pub redecoded: bool,
}

#[derive(Debug, Clone)]
pub struct SttOptions {
    pub threads: usize,
    /// Text that conditions the decoder (fillers, or the question being answered).
    pub prompt: Option<String>,
    /// Decode in whisper's whole 30 s window without the prompt, as offline transcription does (slow; for
    /// reference decodes).
    pub full_window: bool,
    /// Asked as the decode goes (between the steps of whisper's compute graphs): when it says yes, the decode
    /// stops with `SttError::GaveWay`. For optional work (a partial) that should not hold a core someone waits
    /// for.
    pub give_way: Option<GiveWay>,
}

impl Default for SttOptions {
    fn default() -> Self {
        Self { threads: 2, prompt: Some(FILLER_PROMPT.to_string()), full_window: false, give_way: None }
    }
}

impl SttOptions {
    /// An offline decode: the whole window, no prompt.
    pub fn offline(threads: usize) -> Self {
        Self { threads, prompt: None, full_window: true, give_way: None }
    }
}

/// Whether a decode running now should stop for more pressing work.
#[derive(Clone)]
pub struct GiveWay(Arc<dyn Fn() -> bool + Send + Sync>);

impl GiveWay {
    pub fn new(pressing: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(pressing))
    }
}

impl std::fmt::Debug for GiveWay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GiveWay")
    }
}

/// What whisper.cpp's abort callback is handed: the question, and whether it was answered yes.
struct Abort<'a> {
    give_way: &'a GiveWay,
    stopped: bool,
}

/// whisper.cpp's abort callback: called on the decoding thread, between graph steps.
unsafe extern "C" fn should_abort(data: *mut std::ffi::c_void) -> bool {
    // SAFETY: `data` points at the `Abort` that `transcribe` keeps alive, and does not touch, while
    // `WhisperState::full` runs; whisper.cpp calls this on one thread only, inside that call.
    let abort = unsafe { &mut *data.cast::<Abort<'_>>() };
    abort.stopped = abort.stopped || (abort.give_way.0)();
    abort.stopped
}

/// How a decode runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decode {
    /// The fitted window with the prompt, greedy, bounded: the live path.
    Fast,
    /// After a degenerate fast decode: the safe window, no prompt, one segment (no second pass over the
    /// silent tail), and whisper's temperature fall-back when the result still repeats itself.
    Careful,
    /// The whole 30 s window, no prompt, unbounded: what an offline transcription does, and the last resort
    /// when a careful decode repeats itself too (a second of audio holding only "um", say).
    Whole,
}

fn transcribe(
    state: &mut WhisperState,
    pcm: &[f32],
    offset_ms: u64,
    options: &SttOptions,
    decode: Decode,
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
    params.set_single_segment(decode == Decode::Careful);
    params.set_temperature_inc(if decode == Decode::Careful { 0.2 } else { 0.0 });
    if let Some(prompt) = options.prompt.as_ref().filter(|_| decode == Decode::Fast) {
        params.set_initial_prompt(prompt);
    }
    // 50 encoder frames per second of audio, plus a second of margin, in steps of 64 (the encoder's
    // convolution needs a multiple of its stride).
    let seconds = pcm.len() as f32 / 16_000.0;
    let frames = (((seconds + 1.0) * 50.0) as u32).div_ceil(64) * 64;
    let min_audio_ctx = match decode {
        Decode::Fast => FAST_AUDIO_CTX,
        Decode::Careful => SAFE_AUDIO_CTX,
        Decode::Whole => FULL_AUDIO_CTX,
    };
    params.set_audio_ctx(frames.clamp(min_audio_ctx, FULL_AUDIO_CTX) as i32);
    if decode != Decode::Whole {
        params.set_max_tokens((MIN_TOKENS + MAX_TOKENS_PER_SECOND * seconds) as i32);
    }
    // whisper.cpp needs at least one second; pad short clips with silence.
    let mut padded;
    let audio = if pcm.len() < 16_000 {
        padded = pcm.to_vec();
        padded.resize(16_000 + 1600, 0.0);
        &padded[..]
    } else {
        pcm
    };
    let mut abort = options.give_way.as_ref().map(|give_way| Abort { give_way, stopped: false });
    if let Some(abort) = abort.as_mut() {
        // SAFETY: `abort` outlives the call to `full` below, which consumes the parameters holding its address,
        // and only the callback touches it during that call.
        unsafe {
            params.set_abort_callback(Some(should_abort));
            params.set_abort_callback_user_data(std::ptr::from_mut(abort).cast());
        }
    }
    let decoded = state.full(params, audio);
    if abort.is_some_and(|abort| abort.stopped) {
        return Err(SttError::GaveWay);
    }
    decoded?;
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
    let words = without_annotations(words);
    // Whisper's own text keeps its spacing; where it holds an annotation, the text is rebuilt from the words left.
    let text = if text.contains(['[', '(']) { join(&words) } else { text.trim().to_string() };
    Transcript { text, words, redecoded: false }
}

/// Whisper marks sounds that are not speech in brackets or parentheses ("[BLANK_AUDIO]", "(coughs)", "[S]" when
/// the token budget cuts one short): nothing the speaker said, so neither text nor a word for pace and counts.
/// Words without a letter or digit (a lone "-") go too.
fn without_annotations(words: Vec<TimedWord>) -> Vec<TimedWord> {
    let mut depth = 0_usize;
    words
        .into_iter()
        .filter(|word| {
            let inside = depth > 0 || word.text.starts_with(['[', '(']);
            for c in word.text.chars() {
                match c {
                    '[' | '(' => depth += 1,
                    ']' | ')' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            !inside && word.text.chars().any(char::is_alphanumeric)
        })
        .collect()
}

/// Does a decode of `seconds` of audio look like a decoder running on rather than what was said? More words
/// than a person can say in that time, a phrase of two or more spoken words twice back to back ("go forward
/// ten meters. Go forward ten meters.", "Alright, thanks. Alright, thanks.", "29340. 29340.": a numeral is a
/// word per digit when said), or one word three times ("again again again"). A speaker who really repeats
/// themselves ("fail again, fail again") costs a second decode, which keeps the repetition.
pub fn degenerate(words: &[TimedWord], seconds: f32) -> bool {
    if words.len() as f32 > 2.0 + MAX_WORDS_PER_SECOND * seconds.max(1.0) {
        return true;
    }
    let normalized: Vec<String> = words.iter().map(TimedWord::normalized).collect();
    let spoken = |span: &[String]| span.iter().map(|w| w.chars().filter(char::is_ascii_digit).count().max(1)).sum::<usize>();
    let repeated = |len: usize, times: usize| {
        normalized.len() >= len * times
            && (0..=normalized.len() - len * times).any(|i| {
                let span = &normalized[i..i + len];
                (times > 2 || spoken(span) >= 2)
                    && (1..times).all(|k| *span == normalized[i + k * len..i + (k + 1) * len])
            })
    };
    repeated(1, 3) || (1..=normalized.len() / 2).any(|len| repeated(len, 2))
}

/// Does a decode prompted with the words `before` it start by echoing their last phrase (two words or more)?
/// Whisper conditioned on a prompt sometimes carries on from it ("nothing going on" + "going on. We're just"):
/// such a piece is decoded again without the prompt, which keeps a phrase the speaker really repeated.
pub fn echoes(before: &[TimedWord], words: &[TimedWord]) -> bool {
    let tail: Vec<String> = before.iter().rev().take(8).rev().map(TimedWord::normalized).collect();
    let head: Vec<String> = words.iter().take(8).map(TimedWord::normalized).collect();
    (2..=tail.len().min(head.len())).any(|len| tail[tail.len() - len..] == head[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, seconds: f32) -> Vec<TimedWord> {
        let count = text.split_whitespace().count().max(1) as f32;
        text.split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                let start = (i as f32 * seconds * 1000.0 / count) as u64;
                TimedWord::new(w, start, start + 100)
            })
            .collect()
    }

    #[test]
    fn loops_and_runaway_decodes_look_degenerate_and_real_speech_does_not() {
        assert!(degenerate(&words("Go forward 10 meters. Go forward 10 meters.", 2.8), 2.8));
        assert!(degenerate(&words("try again. Try again. Try again.", 1.2), 1.2));
        assert!(degenerate(&words("again again again", 1.0), 1.0));
        assert!(degenerate(&words("this is probably good. Alright, thanks. Alright, thanks.", 3.0), 3.0));
        assert!(degenerate(&words(&"and so on ".repeat(12), 3.0), 3.0), "more words than fit in the audio");
        assert!(degenerate(&words("29340. 29340.", 1.9), 1.9), "five digits said once, written twice");
        for said in [
            "Ever tried. Ever failed. No matter. Try again. Fail better.",
            "It was the best of times, it was the worst of times",
            "um, so I, uh, I think we had to, like, rebuild it",
            "two nine three four zero",
            "the the rest of it",
            "it went from 8, 8 to 9",
        ] {
            assert!(!degenerate(&words(said, 4.0), 4.0), "{said}");
        }
    }

    #[test]
    fn whispers_notes_on_sounds_are_neither_text_nor_words() {
        let heard = without_annotations(words("as not. [S] What your (coughs loudly) country [BLANK_AUDIO] - can", 4.0));
        assert_eq!(join(&heard), "as not. What your country can");
        let cut_short = without_annotations(words("ask not [Music", 2.0));
        assert_eq!(join(&cut_short), "ask not", "an annotation the token budget cut off goes too");
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

    #[test]
    fn a_piece_that_starts_with_the_prompts_last_phrase_echoes_it() {
        let before = words("there's nothing going on", 1.5);
        assert!(echoes(&before, &words("going on. We're just saying some words", 2.0)));
        assert!(!echoes(&before, &words("on the weekends we rest", 2.0)), "one word is not an echo");
        assert!(!echoes(&before, &words("We're just saying some words", 2.0)));
        assert!(!echoes(&[], &words("going on", 1.0)));
    }
}
