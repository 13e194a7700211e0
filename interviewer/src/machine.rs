//! `Interviewer`: one interview as a pure state machine. The caller feeds `handle(input, now_ms)` (the media
//! connected, the candidate started or finished a turn, an utterance ended, a control, a typed answer, a brain's
//! reply, a tick) and carries out the actions it returns (say, stop speaking, emit an event, store a fact, ask a
//! brain, end). No clock, no I/O: the whole conversation can be played as a timeline in tests.
//!
//! The flow: a greeting with the plan and the first question; per planned question, up to two follow-ups
//! chosen from what the answer lacks (none for a strong answer); ratings when its thread closes; the next
//! question aims at the least covered competency and the job description; rounds advance by themselves; a
//! closing that invites the candidate's questions; then the end, with everything recorded for the report.
//! With an LLM brain, each answer is judged by it within a deadline; a late, failed or invalid reply falls back
//! to the built-in brain at once, which is a transition here like any other.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::answer::{Analysis, Lack, Word, typed_words};
use crate::bank::{Question, bank};
use crate::brain::{BrainRequest, Context, Judgement, decision_in, judge_request, parse_judgement};
use crate::grade::{Rating, grade, rubric};
use crate::jd::{JobProfile, Ledger, profile, skill};
use crate::plan::{InterviewKind, Level, Track, suggest_rounds, track};
use crate::report::{AskedQuestion, FollowUp, Record};

/// Follow-ups per planned question, at most.
pub const MAX_FOLLOW_UPS: usize = 2;
/// Gentle prompts during a long silence after a question, at most.
pub const MAX_SILENCE_PROMPTS: u8 = 2;
/// A question counts as heard when this share of its words was spoken before a cut.
const HEARD_SHARE: f32 = 0.6;

/// What the interviewer needs to know about the interview. Never the candidate's identity, except `redact`:
/// words kept out of anything sent to a brain.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Prefix of the ids of questions asked (the interview's id), so ids are unique in storage.
    pub id_prefix: String,
    pub role: String,
    pub kind: InterviewKind,
    pub level: Level,
    /// Planned questions; follow-ups do not count, a skipped question does.
    pub question_count: u32,
    pub job_description: Option<String>,
    /// The candidate's earlier interviews: rotates the bank so practice meets new questions, while the same
    /// role, level and variant always get the same core questions.
    pub variant: u32,
    /// Ask the LLM brain to judge answers (it is configured).
    pub llm: bool,
    pub redact: Vec<String>,
    pub timing: Timing,
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Silence after a question before a gentle prompt.
    pub thinking_ms: u64,
    /// No activity from the candidate this long ends the interview (kept, marked incomplete).
    pub idle_end_ms: u64,
    /// How long an LLM judgement may take before the built-in brain decides.
    pub brain_deadline_ms: u64,
    /// After the closing invitation, how long to wait for the candidate's questions.
    pub closing_wait_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self { thinking_ms: 20_000, idle_end_ms: 300_000, brain_deadline_ms: 8_000, closing_wait_ms: 15_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Repeat,
    Skip,
    Pause,
    Resume,
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Media flows: the interview begins.
    Connected,
    /// The candidate's connection dropped: the interviewer stops talking and waits (a held pause) while the
    /// audio already received is still transcribed and kept with the answer, unjudged.
    Disconnected,
    /// The candidate is back on a fresh connection: the question is asked again, or continued if an answer had
    /// started (a pause the candidate asked for before the drop stays on).
    Reconnected,
    /// The candidate began speaking (barge-in if the interviewer is talking).
    CandidateStarted,
    /// A finished spoken turn: its words with times, and its pace.
    CandidateFinished { words: Vec<Word>, wpm: Option<f32> },
    TypedAnswer(String),
    /// An utterance finished playing or was cut; `spoken` is what was said before the cut.
    UtteranceEnded { utterance: u64, interrupted: bool, spoken: String },
    Control(Control),
    /// The first, spoken part of a reply still streaming (see `brain::decision_in`): whether to follow up.
    BrainDecided { request: u64, text: String },
    BrainReplied { request: u64, text: String },
    BrainFailed { request: u64, error: String },
    Tick,
}

/// Which brain produced a question or a rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrainKind {
    BuiltIn,
    Llm,
}

impl BrainKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuiltIn => "built_in",
            Self::Llm => "llm",
        }
    }
}

/// What clients see (mapped to protocol v1 events by the server).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Interviewing { paused: bool },
    WrappingUp,
    Question {
        question_id: String,
        parent_id: Option<String>,
        /// 1-based round number, its kind and title.
        round: u32,
        round_kind: String,
        round_title: String,
        text: String,
        /// 1-based place among the planned questions, and how many are planned.
        index: u32,
        total: u32,
        follow_up: bool,
    },
    Scored { question_id: String, scores: BTreeMap<String, u8>, notes: String, ratings: Vec<Rating>, brain: BrainKind },
}

/// What storage keeps, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    RoundStarted { round: usize },
    RoundEnded { round: usize },
    QuestionAsked { id: String, round: usize, position: u32, text: String, source: QuestionSource, parent_id: Option<String> },
    AnswerScored { question_id: String, ratings: Vec<Rating>, notes: String, brain: BrainKind },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionSource {
    Bank,
    Llm,
    FollowUp,
}

impl QuestionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bank => "bank",
            Self::Llm => "llm",
            Self::FollowUp => "follow_up",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Every planned question asked and the closing done.
    Completed,
    /// The candidate ended it.
    CandidateEnded,
    /// No activity for `Timing::idle_end_ms`.
    Idle,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::CandidateEnded => "candidate_ended",
            Self::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say { utterance: u64, text: String, question_id: Option<String> },
    StopSpeaking,
    Emit(Event),
    Store(Fact),
    AskBrain { request: BrainRequest, deadline_ms: u64 },
    /// The interview is over: the record the report is built from.
    End { reason: EndReason, record: Box<Record> },
}

/// A round as planned: kind, title, how many planned questions it gets.
#[derive(Debug, Clone, PartialEq)]
struct Round {
    kind: String,
    title: String,
    questions: u32,
}

/// What happens when the utterance being spoken ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Then {
    /// Listen for the answer; the silence prompts given so far.
    Listen(u8),
    ListenToClosing,
    End,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Phase {
    /// Before the media connects.
    Waiting,
    Speaking { utterance: u64, then: Then },
    Listening { since_ms: u64, prompts: u8 },
    /// An LLM judgement of the current answer is pending.
    Judging { request: u64, deadline_ms: u64 },
    /// After the closing invitation: the candidate's questions, if any.
    Closing { since_ms: u64 },
    Ended,
}

/// The question being asked: its place in the record, the follow-up being asked (if any), and whether the
/// candidate heard it (a cut before most of it was said means not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Current {
    index: usize,
    follow_up: Option<usize>,
    heard: bool,
    /// The utterance asking it: only that one's cut decides `heard` (a late end of an earlier one must not).
    asked_by: Option<u64>,
    /// The text the interviewer asked, for repeats.
    text: String,
    /// Which lacks were already probed.
    probed: Vec<Lack>,
    words: Vec<Word>,
}

#[derive(Clone)]
pub struct Interviewer {
    setup: Setup,
    track: Track,
    rounds: Vec<Round>,
    job: Option<JobProfile>,
    ledger: Ledger,
    record: Record,
    phase: Phase,
    /// The phase to return to after a pause.
    paused: Option<Phase>,
    /// The candidate is disconnected; `true` when they had paused before the drop.
    away: Option<bool>,
    current: Option<Current>,
    round: usize,
    asked_in_round: u32,
    used: HashSet<String>,
    next_utterance: u64,
    next_request: u64,
    last_activity_ms: u64,
    /// Earlier questions and answers, for the brain's context.
    history: Vec<(String, String)>,
    /// An answer the LLM decided not to follow up, whose ratings are still streaming in.
    pending: Option<PendingRatings>,
}

/// An answer waiting for its ratings: the reply of `request` by `deadline_ms`, else the built-in brain's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingRatings {
    request: u64,
    deadline_ms: u64,
    answer: Current,
}

/// Where an interview stands, to resume it in a later session (after a server restart): what was asked and
/// answered, and the question in progress. The plan is made again from the setup; times are not kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    ledger: Ledger,
    record: Record,
    /// The phase to resume (the one before a pause), and whether the candidate had paused.
    phase: Phase,
    paused: bool,
    current: Option<Current>,
    round: usize,
    asked_in_round: u32,
    used: HashSet<String>,
    next_utterance: u64,
    next_request: u64,
    history: Vec<(String, String)>,
    pending: Option<PendingRatings>,
}

const ACKNOWLEDGEMENTS: &[&str] = &["Thank you.", "Thanks for that.", "Okay, thank you.", "Got it, thanks."];

impl Interviewer {
    pub fn new(setup: Setup) -> Self {
        let track = track(&setup.role);
        let suggested = suggest_rounds(&setup.role, setup.kind, setup.level);
        let rounds = distribute(&suggested.iter().map(|r| (r.kind.to_string(), r.title.to_string())).collect::<Vec<_>>(), setup.question_count.max(1));
        let job = setup.job_description.as_deref().map(profile).filter(|j| !j.skills.is_empty() || !j.duties.is_empty());
        let targets: Vec<String> = rounds
            .iter()
            .flat_map(|r| bank().for_round(&r.kind, track, setup.level))
            .flat_map(|q| q.competencies.first().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let ledger = Ledger::new(&targets, job.as_ref().unwrap_or(&JobProfile::default()));
        let record = Record {
            rounds: rounds.iter().map(|r| (r.kind.clone(), r.title.clone())).collect(),
            questions: Vec::new(),
            ledger: ledger.clone(),
            job: job.clone(),
            planned: setup.question_count.max(1) as usize,
        };
        Self {
            setup,
            track,
            rounds,
            job,
            ledger,
            record,
            phase: Phase::Waiting,
            paused: None,
            away: None,
            current: None,
            round: 0,
            asked_in_round: 0,
            used: HashSet::new(),
            next_utterance: 0,
            next_request: 0,
            last_activity_ms: 0,
            history: Vec::new(),
            pending: None,
        }
    }

    /// Where the interview stands, once it has started and until it ends.
    pub fn snapshot(&self) -> Option<Snapshot> {
        if matches!(self.phase, Phase::Waiting | Phase::Ended) {
            return None;
        }
        let candidate_paused = self.paused.is_some() && self.away != Some(false);
        Some(Snapshot {
            ledger: self.ledger.clone(),
            record: self.record.clone(),
            phase: self.paused.clone().unwrap_or_else(|| self.phase.clone()),
            paused: candidate_paused,
            current: self.current.clone(),
            round: self.round,
            asked_in_round: self.asked_in_round,
            used: self.used.clone(),
            next_utterance: self.next_utterance,
            next_request: self.next_request,
            history: self.history.clone(),
            pending: self.pending.clone(),
        })
    }

    /// An interview resumed from `snapshot` in a new session: it stands as after a dropped connection, so the
    /// candidate's connecting resumes it (the question again, or continued). Ratings that were still streaming
    /// are given by the built-in brain at the first tick.
    pub fn restore(setup: Setup, snapshot: Snapshot) -> Self {
        let mut machine = Self::new(setup);
        machine.ledger = snapshot.ledger;
        machine.record = snapshot.record;
        machine.paused = Some(snapshot.phase);
        machine.away = Some(snapshot.paused);
        machine.phase = Phase::Listening { since_ms: 0, prompts: MAX_SILENCE_PROMPTS };
        machine.current = snapshot.current;
        machine.round = snapshot.round;
        machine.asked_in_round = snapshot.asked_in_round;
        machine.used = snapshot.used;
        machine.next_utterance = snapshot.next_utterance;
        machine.next_request = snapshot.next_request;
        machine.history = snapshot.history;
        machine.pending = snapshot.pending.map(|p| PendingRatings { deadline_ms: 0, ..p });
        machine
    }

    /// The id of the question being answered now (follow-up or planned), for storing the candidate's turns.
    pub fn current_question_id(&self) -> Option<String> {
        let current = self.current.as_ref()?;
        let q = self.record.questions.get(current.index)?;
        Some(match current.follow_up {
            Some(f) => q.follow_ups.get(f).map_or_else(|| q.id.clone(), |f| f.id.clone()),
            None => q.id.clone(),
        })
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The planned rounds as (kind, title, planned questions).
    pub fn rounds(&self) -> Vec<(String, String, u32)> {
        self.rounds.iter().map(|r| (r.kind.clone(), r.title.clone(), r.questions)).collect()
    }

    pub fn handle(&mut self, input: Input, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Ended {
            return out;
        }
        match input {
            Input::Connected if self.away.is_some() => return self.handle(Input::Reconnected, now_ms),
            Input::Connected => {
                if self.phase == Phase::Waiting {
                    self.last_activity_ms = now_ms;
                    out.push(Action::Emit(Event::Interviewing { paused: false }));
                    self.greet(now_ms, &mut out);
                }
            }
            Input::Disconnected => {
                if self.away.is_some() || self.phase == Phase::Waiting {
                    return out;
                }
                self.away = Some(self.paused.is_some());
                if self.paused.is_none() {
                    if matches!(self.phase, Phase::Speaking { .. }) {
                        out.push(Action::StopSpeaking);
                    }
                    self.paused = Some(self.phase.clone());
                    self.phase = Phase::Listening { since_ms: now_ms, prompts: MAX_SILENCE_PROMPTS };
                }
            }
            Input::Reconnected => {
                let Some(held) = self.away.take() else { return out };
                self.last_activity_ms = now_ms;
                if held {
                    out.push(Action::Emit(Event::Interviewing { paused: true }));
                } else {
                    self.resume(now_ms, &mut out);
                }
            }
            Input::CandidateStarted => {
                self.last_activity_ms = now_ms;
                if let Phase::Speaking { then, .. } = self.phase {
                    out.push(Action::StopSpeaking);
                    self.phase = if then == Then::ListenToClosing || then == Then::End {
                        Phase::Closing { since_ms: now_ms }
                    } else {
                        Phase::Listening { since_ms: now_ms, prompts: MAX_SILENCE_PROMPTS }
                    };
                } else if let Phase::Listening { prompts, .. } = self.phase {
                    self.phase = Phase::Listening { since_ms: now_ms, prompts };
                }
            }
            Input::CandidateFinished { words, wpm } => {
                self.last_activity_ms = now_ms;
                self.answer(words, wpm, now_ms, &mut out);
            }
            Input::TypedAnswer(text) => {
                self.last_activity_ms = now_ms;
                if matches!(self.phase, Phase::Speaking { .. }) {
                    out.push(Action::StopSpeaking);
                }
                // Typed under the question shown on screen: it was read, however much of it was said.
                if let Some(current) = self.current.as_mut() {
                    (current.heard, current.asked_by) = (true, None);
                }
                self.answer(typed_words(&text), None, now_ms, &mut out);
            }
            Input::UtteranceEnded { utterance, interrupted, spoken } => self.utterance_ended(utterance, interrupted, &spoken, now_ms, &mut out),
            Input::Control(control) => {
                self.last_activity_ms = now_ms;
                self.control(control, now_ms, &mut out);
            }
            Input::BrainDecided { request, text } => {
                if self.phase_judging(request)
                    && let Some(Ok(follow_up)) = decision_in(&text)
                {
                    self.decided(request, follow_up, now_ms, &mut out);
                }
            }
            Input::BrainReplied { request, text } => {
                if self.phase_judging(request) {
                    self.judged(Some(text), now_ms, &mut out);
                } else if self.pending.as_ref().is_some_and(|p| p.request == request) {
                    self.rate_pending(Some(text), &mut out);
                }
            }
            Input::BrainFailed { request, .. } => {
                if self.phase_judging(request) {
                    self.judged(None, now_ms, &mut out);
                } else if self.pending.as_ref().is_some_and(|p| p.request == request) {
                    self.rate_pending(None, &mut out);
                }
            }
            Input::Tick => self.tick(now_ms, &mut out),
        }
        out
    }

    fn phase_judging(&self, request: u64) -> bool {
        matches!(self.phase, Phase::Judging { request: r, .. } if r == request)
    }

    fn say(&mut self, text: String, question_id: Option<String>, then: Then, out: &mut Vec<Action>) {
        self.next_utterance += 1;
        self.phase = Phase::Speaking { utterance: self.next_utterance, then };
        if let (Some(current), Some(_)) = (self.current.as_mut(), &question_id) {
            current.asked_by = Some(self.next_utterance);
        }
        out.push(Action::Say { utterance: self.next_utterance, text, question_id });
    }

    fn greet(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let total = self.setup.question_count.max(1);
        let minutes = (total * 4).max(5);
        let rounds = self.rounds.iter().filter(|r| r.questions > 0).count();
        let plan = if rounds > 1 {
            let titles: Vec<String> = self.rounds.iter().filter(|r| r.questions > 0).map(|r| r.title.to_lowercase()).collect();
            format!("{total} questions over {rounds} rounds, {}, about {minutes} minutes", join_words(&titles))
        } else {
            format!("{total} question{}, about {minutes} minutes", if total == 1 { "" } else { "s" })
        };
        let opening = format!(
            "Hello, and welcome to your practice interview for the {} role. We will go through {plan}. Take your time \
             with each answer; you can ask me to repeat a question, skip it, or pause at any point.",
            self.setup.role
        );
        self.next_question(opening, now_ms, out);
    }

    /// Asks the next planned question (or closes), after `lead` (an acknowledgement or the greeting).
    fn next_question(&mut self, lead: String, now_ms: u64, out: &mut Vec<Action>) {
        let asked = self.record.questions.len() as u32;
        if asked >= self.setup.question_count.max(1) {
            return self.close(lead, now_ms, out);
        }
        let mut lead = lead;
        let starting = self.asked_in_round == 0 && asked == 0;
        if !starting && self.asked_in_round >= self.rounds[self.round].questions {
            out.push(Action::Store(Fact::RoundEnded { round: self.round }));
            self.round += 1;
            while self.round < self.rounds.len() && self.rounds[self.round].questions == 0 {
                self.round += 1;
            }
            self.asked_in_round = 0;
        }
        let Some(round) = self.rounds.get(self.round).cloned() else { return self.close(lead, now_ms, out) };
        if self.asked_in_round == 0 {
            out.push(Action::Store(Fact::RoundStarted { round: self.round }));
            let article = if self.round == 0 { "We will start with" } else { "Let's move on to" };
            lead = format!("{lead} {article} the {} round.", round.title.to_lowercase());
        }
        let Some(question) = self.choose(&round.kind) else { return self.close(lead, now_ms, out) };
        self.used.insert(question.id.clone());
        self.asked_in_round += 1;
        let index = self.record.questions.len();
        let id = format!("{}-q{}", self.setup.id_prefix, index + 1);
        self.record.questions.push(AskedQuestion {
            id: id.clone(),
            bank_id: question.id.clone(),
            round: self.round,
            text: question.text.clone(),
            competencies: question.competencies.clone(),
            answer: String::new(),
            follow_ups: Vec::new(),
            skipped: false,
            brain: BrainKind::BuiltIn.as_str().to_string(),
            ratings: Vec::new(),
            wpm: None,
        });
        self.current = Some(Current { index, follow_up: None, heard: true, asked_by: None, text: question.text.clone(), probed: Vec::new(), words: Vec::new() });
        out.push(Action::Store(Fact::QuestionAsked {
            id: id.clone(),
            round: self.round,
            position: index as u32 + 1,
            text: question.text.clone(),
            source: QuestionSource::Bank,
            parent_id: None,
        }));
        out.push(Action::Emit(Event::Question {
            question_id: id.clone(),
            parent_id: None,
            round: self.round as u32 + 1,
            round_kind: round.kind.clone(),
            round_title: round.title.clone(),
            text: question.text.clone(),
            index: index as u32 + 1,
            total: self.setup.question_count.max(1),
            follow_up: false,
        }));
        self.say(format!("{lead} {}", question.text).trim().to_string(), Some(id), Then::Listen(0), out);
    }

    /// The round's next question: least covered competencies first, then what the job asks for, then bank
    /// order rotated by the variant.
    fn choose(&self, round_kind: &str) -> Option<Question> {
        let candidates: Vec<&Question> =
            bank().for_round(round_kind, self.track, self.setup.level).into_iter().filter(|q| !self.used.contains(&q.id)).collect();
        if candidates.is_empty() {
            return None;
        }
        let n = candidates.len();
        let offset = (self.setup.variant as usize * 3) % n;
        candidates
            .iter()
            .enumerate()
            .min_by_key(|(i, q)| {
                let job_match = self.job.as_ref().map_or(0, |job| {
                    q.competencies.iter().filter(|c| job.competencies.contains(c)).count() * 2
                        + job.skills.iter().filter(|s| skill(s).is_some_and(|s| s.aliases.iter().any(|a| q.keywords.contains(a) || q.text.to_lowercase().contains(a.as_str())))).count() * 3
                });
                (self.ledger.coverage_of(&q.competencies[..1]), usize::MAX - job_match, (i + n - offset) % n)
            })
            .map(|(_, q)| (*q).clone())
    }

    fn close(&mut self, lead: String, now_ms: u64, out: &mut Vec<Action>) {
        out.push(Action::Store(Fact::RoundEnded { round: self.round }));
        out.push(Action::Emit(Event::WrappingUp));
        self.current = None;
        let _ = now_ms;
        self.say(
            format!("{lead} That's all my questions. Do you have any questions for me?").trim().to_string(),
            None,
            Then::ListenToClosing,
            out,
        );
    }

    fn utterance_ended(&mut self, utterance: u64, interrupted: bool, spoken: &str, now_ms: u64, out: &mut Vec<Action>) {
        // A cut before most of the question was said: the candidate has not heard it.
        if interrupted && let Some(current) = self.current.as_mut().filter(|c| c.asked_by == Some(utterance)) {
            let question: Vec<&str> = current.text.split_whitespace().collect();
            let said = spoken.split_whitespace().collect::<Vec<_>>();
            let heard = question.iter().filter(|w| said.contains(w)).count();
            current.heard = question.is_empty() || heard as f32 >= HEARD_SHARE * question.len() as f32;
        }
        let Phase::Speaking { utterance: speaking, then } = self.phase else { return };
        if speaking != utterance {
            return;
        }
        match then {
            Then::Listen(prompts) => self.phase = Phase::Listening { since_ms: now_ms, prompts },
            Then::ListenToClosing => self.phase = Phase::Closing { since_ms: now_ms },
            Then::End => self.end(EndReason::Completed, out),
        }
    }

    fn answer(&mut self, words: Vec<Word>, wpm: Option<f32>, now_ms: u64, out: &mut Vec<Action>) {
        if words.iter().all(|w| w.text.trim().is_empty()) {
            return;
        }
        match self.phase {
            Phase::Closing { .. } | Phase::Speaking { then: Then::ListenToClosing | Then::End, .. } => {
                return self.answer_closing(&words, out);
            }
            Phase::Waiting | Phase::Ended => return,
            _ => {}
        }
        // Words that arrive after a drop (the audio received before it) are kept with the answer, unjudged.
        let away = self.away == Some(false);
        if self.paused.is_some() && !away {
            return;
        }
        let Some(current) = self.current.as_mut() else { return };
        let text = words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
        if !current.heard && away {
            let index = current.index;
            if index > 0 {
                let previous = &mut self.record.questions[index - 1];
                previous.answer = format!("{} {text}", previous.answer).trim().to_string();
            }
            return;
        }
        if !current.heard {
            // The question was cut before it was heard: what the candidate said belongs to the previous answer
            // (kept in the record); the question is asked again.
            let index = current.index;
            if index > 0 {
                let previous = &mut self.record.questions[index - 1];
                previous.answer = format!("{} {text}", previous.answer).trim().to_string();
            }
            let again = current.text.clone();
            current.heard = true;
            let id = self.current_question_id();
            return self.say(format!("Thanks. Here is the next question. {again}"), id, Then::Listen(0), out);
        }
        current.words.extend(words);
        let q = &mut self.record.questions[current.index];
        match current.follow_up {
            Some(f) => q.follow_ups[f].answer = format!("{} {text}", q.follow_ups[f].answer).trim().to_string(),
            None => {
                q.answer = format!("{} {text}", q.answer).trim().to_string();
                if wpm.is_some() {
                    q.wpm = wpm;
                }
            }
        }
        if away {
            return;
        }
        self.judge(now_ms, out);
    }

    fn question_of(&self, current: &Current) -> Question {
        let bank_id = &self.record.questions[current.index].bank_id;
        bank().question(bank_id).cloned().expect("asked questions come from the bank")
    }

    /// Judges the current thread: by the LLM within a deadline when it is on, else at once by the rules.
    fn judge(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let Some(current) = self.current.clone() else { return };
        if !self.setup.llm {
            return self.decide(None, BrainKind::BuiltIn, now_ms, out);
        }
        let question = self.question_of(&current);
        let asked = &self.record.questions[current.index];
        let mut thread = vec![(asked.text.clone(), asked.answer.clone())];
        thread.extend(asked.follow_ups.iter().map(|f| (f.text.clone(), f.answer.clone())));
        self.next_request += 1;
        let ctx = Context {
            role: &self.setup.role,
            level: self.setup.level.as_str(),
            job_description: self.setup.job_description.as_deref(),
            history: &self.history[self.history.len().saturating_sub(6)..],
            question: &question.text,
            talking_points: &question.talking_points,
            thread: &thread,
            follow_ups_left: MAX_FOLLOW_UPS.saturating_sub(asked.follow_ups.len()),
            redact: &self.setup.redact,
        };
        let request = judge_request(self.next_request, &ctx);
        let deadline_ms = now_ms + self.setup.timing.brain_deadline_ms;
        self.phase = Phase::Judging { request: self.next_request, deadline_ms };
        out.push(Action::AskBrain { request, deadline_ms });
    }

    fn judged(&mut self, reply: Option<String>, now_ms: u64, out: &mut Vec<Action>) {
        let Some(current) = self.current.clone() else { return };
        let question = self.question_of(&current);
        let analysis = Analysis::of(&question, &current.words);
        match reply.map(|text| parse_judgement(&text, &analysis.words)) {
            Some(Ok(judgement)) => self.decide(Some(judgement), BrainKind::Llm, now_ms, out),
            _ => self.decide(None, BrainKind::BuiltIn, now_ms, out),
        }
    }

    /// A follow-up if the answer lacks something and the budget allows, else ratings and the next question.
    fn decide(&mut self, judgement: Option<Judgement>, brain: BrainKind, now_ms: u64, out: &mut Vec<Action>) {
        let Some(mut current) = self.current.clone() else { return };
        let question = self.question_of(&current);
        let analysis = Analysis::of(&question, &current.words);
        let asked_follow_ups = self.record.questions[current.index].follow_ups.len();
        let budget = asked_follow_ups < MAX_FOLLOW_UPS;
        let follow_up: Option<(String, String, BrainKind)> = match &judgement {
            Some(j) => j.follow_up.clone().filter(|_| budget).map(|text| (text, "llm".to_string(), BrainKind::Llm)),
            None if budget => analysis
                .lacks(question.kind)
                .into_iter()
                .find(|lack| !current.probed.contains(lack))
                .map(|lack| {
                    current.probed.push(lack);
                    (self.probe_text(&question, lack, &analysis), lack.as_str().to_string(), BrainKind::BuiltIn)
                }),
            None => None,
        };
        if let Some((text, reason, by)) = follow_up {
            return self.follow_up(current, text, reason, by, out);
        }
        let ratings = judgement.map(|j| j.ratings).unwrap_or_else(|| grade(&question, &analysis));
        self.score(&current, &question, &analysis, ratings, brain, out);
        let lead = ACKNOWLEDGEMENTS[current.index % ACKNOWLEDGEMENTS.len()].to_string();
        self.next_question(lead, now_ms, out);
    }

    /// The LLM's spoken decision came ahead of its ratings: the follow-up is asked, or the next question, now;
    /// the ratings come with the rest of the reply (or from the built-in brain if it fails).
    fn decided(&mut self, request: u64, follow_up: Option<String>, now_ms: u64, out: &mut Vec<Action>) {
        let Some(current) = self.current.clone() else { return };
        let Phase::Judging { deadline_ms, .. } = self.phase else { return };
        if let Some(text) = follow_up.filter(|_| self.record.questions[current.index].follow_ups.len() < MAX_FOLLOW_UPS) {
            return self.follow_up(current, text, "llm".to_string(), BrainKind::Llm, out);
        }
        let question = self.question_of(&current);
        self.settle(&current, &question, &Analysis::of(&question, &current.words));
        let lead = ACKNOWLEDGEMENTS[current.index % ACKNOWLEDGEMENTS.len()].to_string();
        self.rate_pending(None, out);
        self.pending = Some(PendingRatings { request, deadline_ms, answer: current });
        self.next_question(lead, now_ms, out);
    }

    /// Rates the answer that was waiting: with the LLM's reply if it is valid, else by the built-in brain.
    fn rate_pending(&mut self, reply: Option<String>, out: &mut Vec<Action>) {
        let Some(pending) = self.pending.take() else { return };
        let question = self.question_of(&pending.answer);
        let analysis = Analysis::of(&question, &pending.answer.words);
        let (ratings, brain) = match reply.map(|text| parse_judgement(&text, &analysis.words)) {
            Some(Ok(judgement)) => (judgement.ratings, BrainKind::Llm),
            _ => (grade(&question, &analysis), BrainKind::BuiltIn),
        };
        self.rate(pending.answer.index, ratings, brain, out);
    }

    /// Asks a follow-up to the current question.
    fn follow_up(&mut self, mut current: Current, text: String, reason: String, by: BrainKind, out: &mut Vec<Action>) {
        let q = &mut self.record.questions[current.index];
        let id = format!("{}-f{}", q.id, q.follow_ups.len() + 1);
        q.follow_ups.push(FollowUp { id: id.clone(), text: text.clone(), answer: String::new(), reason, brain: by.as_str().to_string() });
        let parent = q.id.clone();
        current.follow_up = Some(q.follow_ups.len() - 1);
        current.text = text.clone();
        let round = &self.rounds[self.round];
        out.push(Action::Store(Fact::QuestionAsked {
            id: id.clone(),
            round: self.round,
            position: (current.index as u32 + 1) * 10 + q.follow_ups.len() as u32,
            text: text.clone(),
            source: QuestionSource::FollowUp,
            parent_id: Some(parent.clone()),
        }));
        out.push(Action::Emit(Event::Question {
            question_id: id.clone(),
            parent_id: Some(parent),
            round: self.round as u32 + 1,
            round_kind: round.kind.clone(),
            round_title: round.title.clone(),
            text: text.clone(),
            index: current.index as u32 + 1,
            total: self.setup.question_count.max(1),
            follow_up: true,
        }));
        self.current = Some(current);
        self.say(text, Some(id), Then::Listen(0), out);
    }

    fn probe_text(&self, question: &Question, lack: Lack, analysis: &Analysis) -> String {
        let generic = &rubric().generic_probes;
        let p = &question.probes;
        let own = match lack {
            Lack::OffTopic => p.off_topic.clone(),
            Lack::TooShort => None,
            Lack::Example => p.example.clone(),
            Lack::OwnAction => p.own_action.clone(),
            Lack::Result => p.result.clone(),
            Lack::Structure => p.structure.clone(),
            Lack::Depth => {
                // A thin answer where the job asks for something this question can show: ask about that.
                let job_term = self.job.as_ref().and_then(|job| {
                    self.ledger
                        .uncovered_skills(job)
                        .filter_map(skill)
                        .find(|s| s.competencies.iter().any(|c| question.competencies.contains(c)) && !analysis.mentions(&s.aliases[0]))
                        .map(|s| generic.jd.replace("{term}", &s.name))
                });
                job_term.or_else(|| p.depth.clone())
            }
        };
        own.unwrap_or_else(|| {
            match lack {
                Lack::OffTopic => &generic.off_topic,
                Lack::TooShort => &generic.too_short,
                Lack::Example => &generic.example,
                Lack::OwnAction => &generic.own_action,
                Lack::Result => &generic.result,
                Lack::Structure => &generic.structure,
                Lack::Depth => &generic.depth,
            }
            .clone()
        })
    }

    fn score(&mut self, current: &Current, question: &Question, analysis: &Analysis, ratings: Vec<Rating>, brain: BrainKind, out: &mut Vec<Action>) {
        self.settle(current, question, analysis);
        self.rate(current.index, ratings, brain, out);
    }

    /// A finished answer counts in the coverage ledger and the brain's history.
    fn settle(&mut self, current: &Current, question: &Question, analysis: &Analysis) {
        self.ledger.record(&question.competencies, analysis);
        self.record.ledger = self.ledger.clone();
        let q = &self.record.questions[current.index];
        self.history.push((q.text.clone(), q.answer.clone()));
    }

    fn rate(&mut self, index: usize, ratings: Vec<Rating>, brain: BrainKind, out: &mut Vec<Action>) {
        let q = &mut self.record.questions[index];
        q.ratings = ratings.clone();
        q.brain = brain.as_str().to_string();
        let notes = ratings.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>().join(" ");
        let scores = ratings.iter().map(|r| (r.dimension.as_str().to_string(), r.score())).collect();
        out.push(Action::Store(Fact::AnswerScored { question_id: q.id.clone(), ratings: ratings.clone(), notes: notes.clone(), brain }));
        out.push(Action::Emit(Event::Scored { question_id: q.id.clone(), scores, notes, ratings, brain }));
    }

    fn answer_closing(&mut self, words: &[Word], out: &mut Vec<Action>) {
        let text = words.iter().map(|w| w.text.to_lowercase()).collect::<Vec<_>>().join(" ");
        let none = ["no", "nope", "not really", "none", "i'm good", "i am good", "that's all", "no questions", "i don't"]
            .iter()
            .any(|n| text.trim_matches(|c: char| !c.is_alphanumeric()).starts_with(n));
        let reply = if none || !text.contains('?') && text.split_whitespace().count() < 4 {
            "Thank you for your time today. Your report will be ready in a moment."
        } else {
            "That's a good question to ask in a real interview. I'm a practice interviewer, so I can't speak for a \
             real team, but the people you meet there will be glad you asked. Thank you for your time today; your \
             report will be ready in a moment."
        };
        self.say(reply.to_string(), None, Then::End, out);
    }

    fn control(&mut self, control: Control, now_ms: u64, out: &mut Vec<Action>) {
        match control {
            Control::End => {
                if matches!(self.phase, Phase::Speaking { .. }) {
                    out.push(Action::StopSpeaking);
                }
                self.end(EndReason::CandidateEnded, out);
            }
            Control::Pause => {
                if self.paused.is_none() && !matches!(self.phase, Phase::Waiting) {
                    if matches!(self.phase, Phase::Speaking { .. }) {
                        out.push(Action::StopSpeaking);
                    }
                    self.paused = Some(self.phase.clone());
                    self.phase = Phase::Listening { since_ms: now_ms, prompts: MAX_SILENCE_PROMPTS };
                    out.push(Action::Emit(Event::Interviewing { paused: true }));
                }
            }
            Control::Resume => {
                if self.away.is_none() {
                    self.resume(now_ms, out);
                }
            }
            Control::Repeat => {
                if self.paused.is_some() {
                    return;
                }
                // Repeats are coalesced: while the question is being said (again), another repeat does nothing.
                match (&self.phase, self.current.clone()) {
                    (Phase::Listening { .. }, Some(current)) => {
                        let id = self.current_question_id();
                        self.say(current.text, id, Then::Listen(0), out);
                    }
                    (Phase::Closing { .. }, _) => {
                        self.say("Do you have any questions for me?".to_string(), None, Then::ListenToClosing, out)
                    }
                    _ => {}
                }
            }
            Control::Skip => {
                if self.paused.is_some() {
                    return;
                }
                let Some(current) = self.current.clone() else { return };
                if matches!(self.phase, Phase::Closing { .. } | Phase::Waiting) {
                    return;
                }
                if matches!(self.phase, Phase::Speaking { .. }) {
                    out.push(Action::StopSpeaking);
                }
                if current.follow_up.is_some() || !current.words.is_empty() {
                    // Skipping a follow-up (or the rest of an answered question) grades what was said.
                    let question = self.question_of(&current);
                    let analysis = Analysis::of(&question, &current.words);
                    let ratings = grade(&question, &analysis);
                    self.score(&current, &question, &analysis, ratings, BrainKind::BuiltIn, out);
                } else {
                    self.record.questions[current.index].skipped = true;
                }
                self.next_question("Sure, let's skip that one.".to_string(), now_ms, out);
            }
        }
    }

    /// Back from a pause or a drop: the question again (continued when an answer had started), the judging
    /// again, or the closing question.
    fn resume(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let Some(before) = self.paused.take() else { return };
        out.push(Action::Emit(Event::Interviewing { paused: false }));
        match (before, self.current.clone()) {
            (Phase::Closing { .. } | Phase::Speaking { then: Then::ListenToClosing | Then::End, .. }, _) | (_, None) => {
                self.say("Welcome back. Do you have any questions for me?".to_string(), None, Then::ListenToClosing, out)
            }
            (Phase::Judging { .. }, Some(_)) => self.judge(now_ms, out),
            (_, Some(current)) if !current.words.is_empty() => {
                let id = self.current_question_id();
                self.say(format!("Welcome back. Please go on with your answer. {}", current.text), id, Then::Listen(0), out);
            }
            (_, Some(current)) => {
                let id = self.current_question_id();
                self.say(format!("Welcome back. {}", current.text), id, Then::Listen(0), out);
            }
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if self.pending.as_ref().is_some_and(|p| now_ms >= p.deadline_ms) {
            self.rate_pending(None, out);
        }
        // While the candidate is away the server's grace period decides the end.
        if self.away.is_some() {
            return;
        }
        let idle_limit = if self.paused.is_some() { self.setup.timing.idle_end_ms * 2 } else { self.setup.timing.idle_end_ms };
        if !matches!(self.phase, Phase::Waiting) && now_ms.saturating_sub(self.last_activity_ms) >= idle_limit {
            if matches!(self.phase, Phase::Speaking { .. }) {
                out.push(Action::StopSpeaking);
            }
            return self.end(EndReason::Idle, out);
        }
        if self.paused.is_some() {
            return;
        }
        match self.phase.clone() {
            Phase::Listening { since_ms, prompts } if now_ms >= since_ms + self.setup.timing.thinking_ms && prompts < MAX_SILENCE_PROMPTS => {
                let id = self.current_question_id();
                self.say("Take your time. Would you like me to repeat the question?".to_string(), id, Then::Listen(prompts + 1), out);
            }
            Phase::Judging { deadline_ms, .. } if now_ms >= deadline_ms => self.judged(None, now_ms, out),
            Phase::Closing { since_ms } if now_ms >= since_ms + self.setup.timing.closing_wait_ms => {
                self.say("Thank you for your time today. Your report will be ready in a moment.".to_string(), None, Then::End, out)
            }
            _ => {}
        }
    }

    fn end(&mut self, reason: EndReason, out: &mut Vec<Action>) {
        if self.phase == Phase::Ended {
            return;
        }
        // Ratings still streaming are not waited for; an answer in progress is graded with what was said.
        self.rate_pending(None, out);
        if let Some(current) = self.current.take()
            && !current.words.is_empty()
            && self.record.questions[current.index].ratings.is_empty()
        {
            let question = self.question_of(&current);
            let analysis = Analysis::of(&question, &current.words);
            let ratings = grade(&question, &analysis);
            self.score(&current, &question, &analysis, ratings, BrainKind::BuiltIn, out);
        }
        self.phase = Phase::Ended;
        self.record.ledger = self.ledger.clone();
        out.push(Action::End { reason, record: Box::new(self.record.clone()) });
    }
}

/// Spreads `count` planned questions over the rounds in order; with fewer questions than rounds, the first and
/// last rounds keep theirs and the middle ones go first.
fn distribute(rounds: &[(String, String)], count: u32) -> Vec<Round> {
    let n = rounds.len() as u32;
    let mut counts = vec![0u32; rounds.len()];
    if count >= n {
        for (i, c) in counts.iter_mut().enumerate() {
            *c = count / n + u32::from((i as u32) < count % n);
        }
    } else {
        let mut order: Vec<usize> = vec![0];
        if n > 1 {
            order.push(rounds.len() - 1);
        }
        order.extend(1..rounds.len().saturating_sub(1));
        for i in order.into_iter().take(count as usize) {
            counts[i] = 1;
        }
    }
    rounds.iter().zip(counts).map(|((kind, title), questions)| Round { kind: kind.clone(), title: title.clone(), questions }).collect()
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}
