//! `SpeechPipeline`: one candidate's audio stream, 16 kHz mono in, speech events out. Voice activity feeds the
//! turn detector; while a turn is open, partial transcripts are made about once a second when no other
//! inference job waits for a worker, less often when each costs more (their last words also tell the turn
//! detector whether a thought is unfinished), and a partial already decoding stops when the caller's
//! `GiveWay` says more pressing work waits (another stream's turn ending, the interviewer's next sentence);
//! when it closes, the whole turn is transcribed once more for the final transcript, with pace, fillers,
//! pauses and pitch.
//!
//! What is settled is not decoded again. Inside a turn, a pause of `MIN_PAUSE_MS` closes a segment: it is
//! decoded once (prompted with what came before) and its words are kept; partials and the final decode only the
//! open segment after the last pause. Segments come from voice activity, not from word timestamps, which are
//! too rough with whisper's shortened audio context to cut audio on.
//!
//! A pause long enough ends the turn even mid-thought. The next turn, when both are short and it starts soon
//! after, is decoded together with the last one's audio and keeps the words after the last one's: the phrase
//! after the pause keeps the words before it, as inside a turn.
//!
//! The final is decoded ahead: once the silence after the voice is within `DECODE_AHEAD_MS` of the shortest
//! end of turn, the final transcript is decoded as if the turn had ended, so it is ready when the turn really
//! ends; if the voice comes back first, that decode is dropped. Its words also tell the turn detector whether
//! the answer trails off ("and", "um"), which decides how long the turn waits. It runs at the same point under
//! load: partials are shed then, so the turn detector's words come from it (deciding on a stale partial's
//! words cut in on three hesitant pauses in four, `tests/cut_ins.rs`), and a decode ahead wasted on a pause
//! inside the answer costs far less than the partials it replaces. When the turn does end, that decode is its
//! final.
//!
//! Blocking: `push` runs the models, so callers run it on a worker thread. The stream's clock is the audio
//! itself: sample counts, not wall time.

use std::sync::Arc;
use std::time::Instant;

use super::{TimedWord, join};
use super::delivery::{Delivery, analyze_spoken};
use super::pitch::PitchTracker;
use super::text::prefix_edit_distances;
use super::stt::{GiveWay, SpeechToText, SttError, SttOptions, Transcript, echoes};
use super::turn::{Hesitation, TurnConfig, TurnDetector, TurnEvent};
use super::vad::{CHUNK_MS, VadModel, VadStream};
use crate::inference::InferenceError;

const RATE_PER_MS: usize = 16;
/// Audio kept from before a turn opens: VAD needs ~100 ms to be sure, and the first word starts earlier.
const PRE_ROLL_MS: u64 = 300;
/// Audio kept after the last voiced chunk, so the last word's tail is transcribed.
const POST_ROLL_MS: u64 = 200;
/// Partial transcripts at most this often, and only over the most recent audio (bounded decode cost).
const PARTIAL_EVERY_MS: u64 = 1000;
/// ...and at most one decode in this many: the gap after a partial is at least this many times its decode
/// time. A long open segment costs more per partial (up to a second on one thread for 15 s), and its partials
/// come less often, so that one stream's partials never take more than a third of a core.
const PARTIAL_GAP_PER_DECODE: u64 = 3;
const PARTIAL_WINDOW_MS: u64 = 15_000;
/// A turn longer than this is transcribed in pieces of this size for the final (whisper's 30 s window).
const FINAL_PIECE_MS: u64 = 28_000;
/// Silence inside a turn that closes a segment. With the pre- and post-roll it leaves no overlap between
/// segments, so no word is decoded twice.
const MIN_PAUSE_MS: u64 = 500;
/// A turn up to this long is decoded whole for its final: it fits the fast decode window (7.7 s with its
/// second of margin), so it costs no more than decoding only its last segment.
const WHOLE_TURN_MS: u64 = 6_600;
/// Audio kept before a segment's first voiced chunk (the VAD is late by a chunk or two).
const SEGMENT_PRE_ROLL_MS: u64 = 250;
/// A short turn that starts this soon after a short last one carries on from it (see `decode_carried_on`).
const CARRY_ON_MS: u64 = 3000;
/// How long before the shortest silence that ends a turn its final starts decoding (about one final decode on
/// this machine; never before the post-roll has arrived).
const DECODE_AHEAD_MS: u64 = 400;

#[derive(Clone)]
pub struct SpeechEngines {
    pub vad: Arc<VadModel>,
    /// Without it, turns and pitch still work; transcripts and word-based metrics do not.
    pub stt: Option<Arc<SpeechToText>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error(transparent)]
    Vad(#[from] InferenceError),
    #[error(transparent)]
    Stt(#[from] SttError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    TurnStarted {
        turn: u32,
        at_ms: u64,
    },
    Partial {
        turn: u32,
        text: String,
        decode_ms: u64,
    },
    Final(FinalTurn),
    /// The final decoded ahead, in the silence: what the turn's final will be if the voice does not come back
    /// (another `Expected` follows if it does). Lets the reply be prepared before the turn ends.
    Expected {
        turn: u32,
        words: Vec<TimedWord>,
        delivery: Delivery,
    },
    /// A burst too short to be speech (a cough, a click).
    Discarded {
        at_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FinalTurn {
    pub turn: u32,
    pub start_ms: u64,
    pub end_ms: u64,
    pub transcript: Transcript,
    pub delivery: Delivery,
    pub pitch_hz: Option<f32>,
    pub pitch_var: Option<f32>,
    /// Silence waited before deciding, and why longer than usual, if it was.
    pub silence_ms: u64,
    pub waited_for: Option<Hesitation>,
    /// Time spent in the final decode, and the audio it covered.
    pub decode_ms: u64,
    pub audio_ms: u64,
    /// The final was decoded ahead, during the silence, so the end of the turn did not wait for it.
    pub decoded_ahead: bool,
}

/// The last turn, while the next may carry on from it: its final words, and where its audio starts and its
/// voice stopped.
struct LastTurn {
    words: Vec<TimedWord>,
    from_ms: u64,
    voice_end_ms: u64,
}

/// How many of the words `heard` in a joint decode are the last turn's, `said`: the split whose words before it
/// are closest to `said` (word edit distance; on a tie the later one, a word heard differently rather than
/// missed). `None` when even those are too far from it (more than half its words wrong): the joint decode
/// heard something else.
fn said_until(said: &[String], heard: &[String]) -> Option<usize> {
    let distance = prefix_edit_distances(said, heard);
    let (at, best) = distance.iter().enumerate().min_by_key(|&(j, d)| (*d, std::cmp::Reverse(j)))?;
    (*best * 2 <= said.len()).then_some(at)
}

/// A final decoded ahead for the turn `turn`, valid if the voice stopped at `last_voice_ms` for good.
struct Ahead {
    turn: u32,
    last_voice_ms: u64,
    words: Vec<TimedWord>,
    /// From the voice's start to its end: what pace is measured over.
    speaking_ms: u64,
    pitch_hz: Option<f32>,
    pitch_var: Option<f32>,
    decode_ms: u64,
    audio_ms: u64,
}

pub struct SpeechPipeline {
    engines: SpeechEngines,
    vad: VadStream,
    turns: TurnDetector,
    stt: Option<Arc<SpeechToText>>,
    options: SttOptions,
    /// Threads the final decode may use when the machine has room (`options.threads` follows the load).
    full_threads: usize,
    /// Threads for a decode ahead: one, unless this stream has the machine to itself.
    ahead_threads: usize,
    /// Other inference jobs wait for a worker: a partial due now is shed, not decoded.
    shed_partials: bool,
    /// Asked while a partial decodes: whether it should stop for more pressing work.
    give_way: Option<GiveWay>,
    /// Audio from `audio_start_ms` on: the pre-roll while idle, the whole turn while speaking.
    audio: Vec<f32>,
    audio_start_ms: u64,
    /// Samples pushed so far, in milliseconds: the stream's clock.
    now_ms: u64,
    turn: u32,
    turn_start_ms: u64,
    last_partial_ms: u64,
    /// Stream time from one partial to the next: `PARTIAL_EVERY_MS`, or longer after a costly one.
    partial_every_ms: u64,
    config: TurnConfig,
    /// Words of this turn's decoded segments: settled, never decoded again.
    settled: Vec<TimedWord>,
    /// Segments closed by a pause and not decoded yet, as `(from_ms, to_ms)`.
    closed: Vec<(u64, u64)>,
    /// Where the open segment's audio starts.
    segment_start_ms: u64,
    /// Silence so far inside the turn.
    pause_ms: u64,
    last_turn: Option<LastTurn>,
    /// Milliseconds spent in VAD so far, for metrics.
    pub vad_ms_total: f64,
    /// Decodes repeated in the larger window because the first looked degenerate, for metrics.
    pub redecodes: u64,
    /// Partials not decoded because other jobs were waiting, or stopped part-way to give way, for metrics.
    pub partials_shed: u64,
    ahead: Option<Ahead>,
    /// Finals decoded ahead and then dropped because the voice came back, for metrics.
    pub ahead_dropped: u64,
}

impl SpeechPipeline {
    pub fn new(engines: SpeechEngines, config: TurnConfig, options: SttOptions) -> Result<Self, SpeechError> {
        let stt = engines.stt.clone();
        Ok(Self {
            engines,
            vad: VadStream::default(),
            turns: TurnDetector::new(config),
            stt,
            full_threads: options.threads,
            ahead_threads: 1,
            options,
            shed_partials: false,
            give_way: None,
            audio: Vec::new(),
            audio_start_ms: 0,
            now_ms: 0,
            turn: 0,
            turn_start_ms: 0,
            last_partial_ms: 0,
            partial_every_ms: PARTIAL_EVERY_MS,
            config,
            settled: Vec::new(),
            closed: Vec::new(),
            segment_start_ms: 0,
            pause_ms: 0,
            last_turn: None,
            vad_ms_total: 0.0,
            redecodes: 0,
            partials_shed: 0,
            ahead: None,
            ahead_dropped: 0,
        })
    }

    pub fn is_speaking(&self) -> bool {
        self.turns.is_speaking()
    }

    /// A turn is open and its voice has stopped: the end of the turn may be decided on any chunk now.
    pub fn ending(&self) -> bool {
        self.turns.last_voice_ms().is_some_and(|v| self.now_ms > v + CHUNK_MS)
    }

    /// How busy the machine is, as the caller sees it before each chunk. With other inference jobs running,
    /// the final decode keeps to one thread (whisper.cpp's threads spin while they wait for one another, which
    /// collapses on a busy machine); with jobs waiting, a partial that falls due is shed (it would hold a
    /// worker for a few hundred ms that another stream's audio or final is waiting for). Finals are what the
    /// conversation waits for; partials are a courtesy, made from spare capacity only. `spare_cores`: the idle
    /// cores this stream may count on; a decode ahead takes all its threads only when they are idle (it is
    /// speculation: it must not slow anyone down, and others' work may start while it runs).
    pub fn set_load(&mut self, others_running: bool, others_waiting: bool, spare_cores: f32) {
        self.options.threads = if others_running { 1 } else { self.full_threads };
        // The threads beyond the one this job runs on need idle cores.
        let idle = spare_cores >= (self.full_threads - 1) as f32;
        self.ahead_threads = if idle { self.options.threads } else { 1 };
        self.shed_partials = others_waiting;
    }

    /// What a partial asks, as it decodes, to know whether to stop and leave its core to more pressing work.
    pub fn set_give_way(&mut self, give_way: Option<GiveWay>) {
        self.give_way = give_way;
    }

    /// Adds 16 kHz samples. Runs VAD on every complete 32 ms chunk and speech-to-text when a partial is due or
    /// a turn ends.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<SpeechEvent>, SpeechError> {
        let mut events = Vec::new();
        let started = Instant::now();
        let probabilities = self.vad.push(&self.engines.vad, samples)?;
        self.vad_ms_total += started.elapsed().as_secs_f64() * 1000.0;
        self.audio.extend_from_slice(samples);
        let chunk_samples = CHUNK_MS as usize * RATE_PER_MS;
        for (index, probability) in probabilities.iter().enumerate() {
            // End of this chunk on the stream clock (VAD consumes whole chunks in order).
            let end_ms = self.now_ms + (index as u64 + 1) * CHUNK_MS;
            if self.turns.is_speaking() {
                self.track_pauses(end_ms, *probability);
            }
            self.turns.handle_vad(end_ms, CHUNK_MS, *probability);
            while let Some(event) = self.turns.poll_event() {
                match event {
                    TurnEvent::Started { at_ms } => {
                        self.turn += 1;
                        self.turn_start_ms = at_ms;
                        self.last_partial_ms = end_ms;
                        self.partial_every_ms = PARTIAL_EVERY_MS;
                        self.settled.clear();
                        self.closed.clear();
                        self.segment_start_ms = at_ms.saturating_sub(PRE_ROLL_MS);
                        self.pause_ms = 0;
                        events.push(SpeechEvent::TurnStarted { turn: self.turn, at_ms });
                    }
                    TurnEvent::Ended { at_ms, silence_ms, waited_for, .. } => {
                        events.push(SpeechEvent::Final(self.finish_turn(at_ms, silence_ms, waited_for)?));
                    }
                    TurnEvent::Discarded { at_ms } => events.push(SpeechEvent::Discarded { at_ms }),
                }
            }
            if let Some(expected) = self.decode_ahead(end_ms)? {
                events.push(expected);
            }
        }
        self.now_ms += (probabilities.len() * chunk_samples / RATE_PER_MS) as u64;
        if self.turns.is_speaking() {
            // Only while the voice goes on: in a silence nothing new was said, the decode ahead will have the
            // words, and a partial started there would hold up that decode and so the end of the turn.
            let voicing = self.turns.last_voice_ms().is_none_or(|v| self.now_ms <= v + CHUNK_MS);
            if voicing && self.now_ms >= self.last_partial_ms + self.partial_every_ms {
                if self.shed_partials {
                    self.last_partial_ms = self.now_ms;
                    self.partials_shed += 1;
                    // Segments the final will not decode whole are settled all the same: that work is owed.
                    if self.now_ms.saturating_sub(self.turn_start_ms) > WHOLE_TURN_MS {
                        self.settle(1)?;
                    }
                } else if let Some(partial) = self.partial()? {
                    events.push(partial);
                }
            }
        } else {
            self.trim_to(self.keep_from_ms());
        }
        Ok(events)
    }

    /// Where the audio kept between turns starts: the pre-roll, and the last turn while the next may carry on
    /// from it.
    fn keep_from_ms(&self) -> u64 {
        let pre_roll = self.now_ms.saturating_sub(PRE_ROLL_MS);
        match &self.last_turn {
            Some(last) if self.now_ms <= last.voice_end_ms + CARRY_ON_MS + PRE_ROLL_MS => last.from_ms.min(pre_roll),
            _ => pre_roll,
        }
    }

    /// Drops audio before `from_ms`.
    fn trim_to(&mut self, from_ms: u64) {
        if from_ms > self.audio_start_ms {
            let drop = (((from_ms - self.audio_start_ms) as usize) * RATE_PER_MS).min(self.audio.len());
            self.audio.drain(..drop);
            self.audio_start_ms += (drop / RATE_PER_MS) as u64;
        }
    }

    /// Audio between two stream times, clamped to what is kept.
    fn audio_between(&self, from_ms: u64, to_ms: u64) -> &[f32] {
        let index = |ms: u64| ((ms.saturating_sub(self.audio_start_ms)) as usize * RATE_PER_MS).min(self.audio.len());
        &self.audio[index(from_ms).min(index(to_ms))..index(to_ms)]
    }

    /// A pause long enough closes the open segment when the voice comes back.
    fn track_pauses(&mut self, end_ms: u64, probability: f32) {
        if probability < self.config.keep_threshold {
            self.pause_ms += CHUNK_MS;
            return;
        }
        if self.pause_ms >= MIN_PAUSE_MS {
            let voice_back_ms = end_ms - CHUNK_MS;
            let pause_start_ms = voice_back_ms - self.pause_ms;
            self.closed.push((self.segment_start_ms, pause_start_ms + POST_ROLL_MS));
            self.segment_start_ms = voice_back_ms.saturating_sub(SEGMENT_PRE_ROLL_MS);
        }
        self.pause_ms = 0;
    }

    /// Decodes the audio between two stream times, prompted with the filler prompt and the words `before` it.
    /// With `give_way`, the decode may stop part-way (`SttError::GaveWay`).
    fn decode(
        &mut self,
        from_ms: u64,
        to_ms: u64,
        threads: usize,
        before: &[TimedWord],
        give_way: Option<GiveWay>,
    ) -> Result<Vec<TimedWord>, SpeechError> {
        let recent: Vec<&str> = before.iter().rev().take(40).map(|w| w.text.as_str()).collect();
        let before_text = recent.into_iter().rev().collect::<Vec<_>>().join(" ");
        let prompt = format!("{} {before_text}", self.options.prompt.as_deref().unwrap_or_default());
        let options = SttOptions { threads, prompt: Some(prompt.trim().to_string()), full_window: false, give_way };
        let audio = self.audio_between(from_ms, to_ms).to_vec();
        let Some(stt) = self.stt.as_ref() else { return Ok(Vec::new()) };
        let mut transcript = stt.transcribe(&audio, from_ms, &options)?;
        if echoes(before, &transcript.words) {
            // The prompt's last phrase echoed at the start of this piece: decode it again without the prompt.
            transcript = stt.transcribe(&audio, from_ms, &SttOptions { prompt: None, ..options })?;
            transcript.redecoded = true;
        }
        self.redecodes += u64::from(transcript.redecoded);
        Ok(transcript.words)
    }

    /// Decodes every closed segment not decoded yet, once.
    fn settle(&mut self, threads: usize) -> Result<(), SpeechError> {
        for (from, to) in std::mem::take(&mut self.closed) {
            let settled = std::mem::take(&mut self.settled);
            let words = self.decode(from, to, threads, &settled, None);
            self.settled = settled;
            self.settled.extend(words?);
        }
        Ok(())
    }

    fn partial(&mut self) -> Result<Option<SpeechEvent>, SpeechError> {
        self.last_partial_ms = self.now_ms;
        if self.stt.is_none() {
            return Ok(None);
        }
        let started = Instant::now();
        self.settle(1)?;
        let from = self.segment_start_ms.max(self.now_ms.saturating_sub(PARTIAL_WINDOW_MS));
        let mut words = self.settled.clone();
        match self.decode(from, self.now_ms, 1, &words, self.give_way.clone()) {
            Ok(open) => words.extend(open),
            Err(SpeechError::Stt(SttError::GaveWay)) => {
                self.partials_shed += 1;
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        self.turns.handle_words(&words);
        let decode_ms = started.elapsed().as_millis() as u64;
        self.partial_every_ms = PARTIAL_EVERY_MS.max(decode_ms * PARTIAL_GAP_PER_DECODE);
        Ok(Some(SpeechEvent::Partial { turn: self.turn, text: join(&words), decode_ms }))
    }

    /// Decodes the final ahead once the silence is close to ending the turn (see the module's note); says what
    /// it found.
    fn decode_ahead(&mut self, end_ms: u64) -> Result<Option<SpeechEvent>, SpeechError> {
        let Some(last_voice_ms) = self.turns.last_voice_ms() else { return Ok(None) };
        // Timed by the shortest end of turn: the words that would make it wait longer may be a stale partial's.
        let due_ms = self.config.end_silence_ms.saturating_sub(DECODE_AHEAD_MS).max(POST_ROLL_MS);
        let due = end_ms.saturating_sub(last_voice_ms) >= due_ms;
        let done = self.ahead.as_ref().is_some_and(|a| a.turn == self.turn && a.last_voice_ms == last_voice_ms);
        if self.stt.is_none() || !due || done {
            return Ok(None);
        }
        if self.ahead.take().is_some_and(|a| a.turn == self.turn) {
            self.ahead_dropped += 1;
        }
        let ahead = self.final_words(last_voice_ms, self.ahead_threads)?;
        // The whole turn's words: whether they trail off ("and", "um") decides how long the turn waits.
        self.turns.handle_words(&ahead.words);
        let delivery = analyze_spoken(&ahead.words, ahead.speaking_ms);
        let expected = SpeechEvent::Expected { turn: self.turn, words: ahead.words.clone(), delivery };
        self.ahead = Some(ahead);
        Ok(Some(expected))
    }

    /// The open turn's final words (and pitch) if the voice stopped at `last_voice_ms`: closed segments are
    /// settled (for good), the rest is decoded; the turn's other state stays as it was, since the voice may come
    /// back.
    fn final_words(&mut self, last_voice_ms: u64, threads: usize) -> Result<Ahead, SpeechError> {
        let started = Instant::now();
        let from = self.turn_start_ms.saturating_sub(PRE_ROLL_MS);
        // The post-roll, as far as audio has arrived (a turn may end inside a long merged chunk).
        let audio_end_ms = self.audio_start_ms + (self.audio.len() / RATE_PER_MS) as u64;
        let to = (last_voice_ms + POST_ROLL_MS).min(audio_end_ms);
        let mut pitch = PitchTracker::new(16_000);
        pitch.push(self.audio_between(from, to));
        let mut audio_ms = 0;
        let mut words = Vec::new();
        let mut piece_start = from;
        if to - from > WHOLE_TURN_MS {
            audio_ms += self.closed.iter().map(|(a, b)| b - a).sum::<u64>();
            self.settle(threads)?;
            words = self.settled.clone();
            piece_start = self.segment_start_ms.max(from);
        } else if let Some((joint_from, carried_on)) = self.decode_carried_on(to, threads)? {
            words = carried_on;
            audio_ms += to - joint_from;
            piece_start = to;
        }
        // A short turn decodes whole, in the same window its last segment alone would take: no word loses the
        // context of the words before it. A long one decodes what follows its settled segments, in pieces that
        // fit whisper's 30 s window.
        while piece_start < to {
            let piece_end = (piece_start + FINAL_PIECE_MS).min(to);
            let piece = self.decode(piece_start, piece_end, threads, &words, None)?;
            words.extend(piece);
            audio_ms += piece_end - piece_start;
            piece_start = piece_end;
        }
        // Whisper's word times are rough (they spread into the pre- and post-roll, and bunch up inside); the VAD
        // knows to a chunk when the voice began and stopped, and pace is measured over that span.
        for word in &mut words {
            word.start_ms = word.start_ms.clamp(self.turn_start_ms, last_voice_ms);
            word.end_ms = word.end_ms.clamp(word.start_ms, last_voice_ms);
        }
        let decode_ms = started.elapsed().as_millis() as u64;
        let speaking_ms = last_voice_ms.saturating_sub(self.turn_start_ms);
        let (pitch_hz, pitch_var) = (pitch.mean_hz(), pitch.variability_semitones());
        Ok(Ahead { turn: self.turn, last_voice_ms, words, speaking_ms, pitch_hz, pitch_var, decode_ms, audio_ms })
    }

    /// A short turn that starts soon after a short last one (a pause ended that one mid-thought) is decoded
    /// together with it, in one window, and keeps the words after the last turn's: a phrase decoded alone loses
    /// the words around it ("ask not" after a pause is heard as "as not"). The window is the fast one either way,
    /// so this costs the decoder a few tokens more. `None` (decode the turn alone) when it does not carry on, or
    /// when the joint decode does not hear the last turn as it was finalised; otherwise where the joint decode
    /// started and the turn's words.
    fn decode_carried_on(&mut self, to_ms: u64, threads: usize) -> Result<Option<(u64, Vec<TimedWord>)>, SpeechError> {
        let Some(last) = self.last_turn.as_ref() else { return Ok(None) };
        if self.turn_start_ms > last.voice_end_ms + CARRY_ON_MS || to_ms - last.from_ms > WHOLE_TURN_MS {
            return Ok(None);
        }
        let from_ms = last.from_ms;
        let said: Vec<String> = last.words.iter().map(TimedWord::normalized).collect();
        let words = self.decode(from_ms, to_ms, threads, &[], None)?;
        let heard: Vec<String> = words.iter().map(TimedWord::normalized).collect();
        Ok(said_until(&said, &heard).filter(|&at| at < words.len()).map(|at| (from_ms, words[at..].to_vec())))
    }

    fn finish_turn(
        &mut self,
        last_voice_ms: u64,
        silence_ms: u64,
        waited_for: Option<Hesitation>,
    ) -> Result<FinalTurn, SpeechError> {
        let (ahead, decoded_ahead) = match self.ahead.take() {
            Some(ahead) if ahead.turn == self.turn && ahead.last_voice_ms == last_voice_ms => (ahead, true),
            stale => {
                self.ahead_dropped += u64::from(stale.is_some_and(|a| a.turn == self.turn));
                (self.final_words(last_voice_ms, self.options.threads)?, false)
            }
        };
        self.settled.clear();
        self.closed.clear();
        let from_ms = self.turn_start_ms.saturating_sub(PRE_ROLL_MS);
        let short = last_voice_ms + POST_ROLL_MS - from_ms <= WHOLE_TURN_MS;
        self.last_turn = (short && !ahead.words.is_empty())
            .then(|| LastTurn { words: ahead.words.clone(), from_ms, voice_end_ms: last_voice_ms });
        let transcript = Transcript { text: join(&ahead.words), words: ahead.words, redecoded: false };
        self.turns.handle_words(&[]);
        self.trim_to(self.keep_from_ms());
        Ok(FinalTurn {
            turn: self.turn,
            start_ms: self.turn_start_ms,
            end_ms: last_voice_ms,
            delivery: analyze_spoken(&transcript.words, ahead.speaking_ms),
            transcript,
            pitch_hz: ahead.pitch_hz,
            pitch_var: ahead.pitch_var,
            silence_ms,
            waited_for,
            decode_ms: ahead.decode_ms,
            audio_ms: ahead.audio_ms,
            decoded_ahead,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::said_until;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_last_turns_words_are_found_in_a_joint_decode_even_when_heard_differently() {
        let said = words("and sold my fellow america");
        assert_eq!(said_until(&said, &words("and so my fellow americans ask not")), Some(5));
        assert_eq!(said_until(&words("ever tried"), &words("ever tried ever failed")), Some(2));
        assert_eq!(said_until(&words("ever tried"), &words("ever tried")), Some(2), "nothing after it");
        assert_eq!(said_until(&words("we shipped it early"), &words("we shipped early and then")), Some(3), "a word missed");
        assert_eq!(said_until(&said, &words("what your country can do for you")), None, "something else");
    }
}
