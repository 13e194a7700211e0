//! The conversation of a live session: one task that owns the `Interviewer` state machine, fed by a bounded
//! channel, and carries out its actions: the voice speaks, events go to the client, facts go to the recorder,
//! brains are asked (with the deadline the machine set), and at the end the report is built and stored.
//!
//! Inputs come from the session (media connected, the end), the speech feed (the candidate started or finished
//! a turn), the data channel (controls, typed answers), the voice (an utterance ended, with what was said before
//! a cut) and brain calls. Client-triggered inputs never wait: past `CAPACITY` queued inputs a control is
//! refused with an error event; the machine coalesces repeats.

use std::sync::Arc;
use std::time::Duration;

use candor_interviewer::answer::Word as AnswerWord;
use candor_interviewer::brain::parse_judgement;
use candor_interviewer::report::{self, PastScores, Record, Report};
use candor_interviewer::{Action, Control, EndReason, Event, Fact, Input, Interviewer, Setup, Snapshot, Timing};
use candor_signaling::events::{SessionPhase, Word};
use candor_signaling::{ControlAction, EventBody};
use tokio::sync::{mpsc, oneshot};

use super::recorder::{Turn, Write};
use super::summary;
use super::{Session, SessionContext};
use crate::domain::Speaker;

/// Inputs waiting for the conversation. Controls past this are refused (`busy`); turns and the session's own
/// inputs wait for room.
const CAPACITY: usize = 64;
/// How often the machine is given the time (silence prompts, brain deadlines, idle end).
const TICK: Duration = Duration::from_millis(250);
/// How long a session's end waits for the report to be written.
pub const FINISH_PATIENCE: Duration = Duration::from_secs(20);

/// A finished spoken turn, as the speech feed hands it over.
pub struct SpokenTurn {
    pub turn_id: String,
    pub text: String,
    pub words: Vec<Word>,
    pub start_ms: u64,
    pub end_ms: u64,
    /// When the turn's last voiced audio reached the server, in session time (voice-to-voice starts there).
    pub voice_arrived_ms: u64,
    pub wpm: Option<f32>,
    /// JSON of the turn's delivery measurements, stored with it.
    pub metrics: String,
}

pub enum Message {
    Input(Input),
    Spoken(SpokenTurn),
    /// What the candidate's turn will be if it ends now (decoded during the silence that may end it): the reply
    /// to it can be prepared.
    Expected { words: Vec<Word>, wpm: Option<f32> },
    Typed(String),
    /// The session is ending: finish (with a report unless `abandoned`) and say when done.
    Finish { abandoned: bool, done: oneshot::Sender<()> },
    /// The server is stopping: store where the interview stands (no report), so it resumes after the restart.
    Interrupt { done: oneshot::Sender<()> },
}

/// The sending side, held by the session context.
#[derive(Clone)]
pub struct Conversation {
    queue: mpsc::Sender<Message>,
}

impl Conversation {
    pub fn channel() -> (Self, mpsc::Receiver<Message>) {
        let (queue, messages) = mpsc::channel(CAPACITY);
        (Self { queue }, messages)
    }

    /// An input from the session or the pipelines: waits for room.
    pub async fn send(&self, message: Message) {
        let _ = self.queue.send(message).await;
    }

    /// An input a client triggered: refused when the conversation is behind.
    pub fn offer(&self, message: Message) -> bool {
        self.queue.try_send(message).is_ok()
    }

    /// Ends the conversation: a report (unless abandoned) is written before this returns.
    pub async fn finish(&self, abandoned: bool) {
        let (done, finished) = oneshot::channel();
        if self.queue.send(Message::Finish { abandoned, done }).await.is_ok() {
            let _ = tokio::time::timeout(FINISH_PATIENCE, finished).await;
        }
    }

    /// Stops the conversation without ending the interview: where it stands is stored before this returns.
    pub async fn interrupt(&self) {
        let (done, stored) = oneshot::channel();
        if self.queue.send(Message::Interrupt { done }).await.is_ok() {
            let _ = tokio::time::timeout(FINISH_PATIENCE, stored).await;
        }
    }
}

pub fn control(action: ControlAction) -> Control {
    match action {
        ControlAction::Repeat => Control::Repeat,
        ControlAction::Skip => Control::Skip,
        ControlAction::Pause => Control::Pause,
        ControlAction::Resume => Control::Resume,
        ControlAction::End => Control::End,
    }
}

/// Runs a session's conversation until it ends. Loads the interview first; without it there is nothing to do.
/// An interview a server stopped in the middle resumes where it stood: the state is stored after every change.
pub async fn run(session: Arc<Session>, mut messages: mpsc::Receiver<Message>) {
    let ctx = session.context.clone();
    let Some(setup) = setup(&session).await else { return };
    let resumed = match ctx.store.resume_state(ctx.interview).await {
        Ok(state) => state.and_then(|state| serde_json::from_str::<Snapshot>(&state).ok()),
        Err(e) => {
            tracing::warn!(error = %e, "where the interview stood could not be read; it starts afresh");
            None
        }
    };
    if resumed.is_some() {
        tracing::info!(interview = %ctx.interview, "interview resumed where it stood");
    }
    let mut machine = match resumed {
        Some(snapshot) => Interviewer::restore(setup, snapshot),
        None => Interviewer::new(setup),
    };
    let mut stored_state: Option<String> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut finishing: Option<(bool, oneshot::Sender<()>)> = None;
    // The candidate's last voiced moment and when their turn reached the conversation (session ms), until the
    // interviewer's reply to it starts (voice-to-voice latency).
    let mut reply_to: Option<(u64, u64)> = None;
    loop {
        let mut ticked = false;
        let actions = tokio::select! {
            message = messages.recv() => match message {
                Some(Message::Input(input)) => machine.handle(input, ctx.events.t_ms()),
                Some(Message::Spoken(turn)) => {
                    let words = answer_words(&turn.words);
                    reply_to = Some((turn.voice_arrived_ms, ctx.events.t_ms()));
                    store_candidate_turn(&ctx, &machine, turn.turn_id, turn.text, turn.words, (turn.start_ms, turn.end_ms), turn.metrics).await;
                    machine.handle(Input::CandidateFinished { words, wpm: turn.wpm }, ctx.events.t_ms())
                }
                Some(Message::Expected { words, wpm }) => {
                    // What the interviewer would say if the turn ended now: a copy of the machine decides, and
                    // the voice makes the first sentence while the silence runs on.
                    let mut preview = machine.clone();
                    let reply = preview.handle(Input::CandidateFinished { words: answer_words(&words), wpm }, ctx.events.t_ms());
                    if let Some(Action::Say { text, .. }) = reply.into_iter().find(|a| matches!(a, Action::Say { .. })) {
                        ctx.voice.prepare(&ctx, &text);
                    }
                    Vec::new()
                }
                Some(Message::Typed(text)) => {
                    let now = ctx.events.t_ms();
                    let id = uuid::Uuid::new_v4().to_string();
                    store_candidate_turn(&ctx, &machine, id, text.clone(), Vec::new(), (now, now), "{}".into()).await;
                    machine.handle(Input::TypedAnswer(text), now)
                }
                Some(Message::Finish { abandoned, done }) => {
                    if abandoned || machine.is_ended() {
                        ctx.recorder.flush().await;
                        let _ = done.send(());
                        return;
                    }
                    finishing = Some((abandoned, done));
                    machine.handle(Input::Control(Control::End), ctx.events.t_ms())
                }
                Some(Message::Interrupt { done }) => {
                    store_state(&ctx, &machine, &mut stored_state).await;
                    ctx.recorder.flush().await;
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            _ = tick.tick() => {
                ticked = true;
                machine.handle(Input::Tick, ctx.events.t_ms())
            }
        };
        if !ticked || !actions.is_empty() {
            store_state(&ctx, &machine, &mut stored_state).await;
        }
        for action in actions {
            if let Some(end) = act(&session, &ctx, action, &mut reply_to).await {
                ctx.voice.interrupt(&ctx).await;
                finish(&session, end.0, *end.1).await;
                match finishing.take() {
                    Some((_, done)) => {
                        let _ = done.send(());
                    }
                    None => {
                        let session = session.clone();
                        tokio::spawn(async move { session.end(end.0.as_str()).await });
                    }
                }
                return;
            }
        }
    }
}

fn answer_words(words: &[Word]) -> Vec<AnswerWord> {
    words.iter().map(|w| AnswerWord { text: w.w.clone(), start_ms: Some(w.start_ms), end_ms: Some(w.end_ms) }).collect()
}

/// Queues where the interview stands when it changed since the last write (cleared once it has ended).
async fn store_state(ctx: &SessionContext, machine: &Interviewer, stored: &mut Option<String>) {
    let state = machine.snapshot().and_then(|s| serde_json::to_string(&s).ok());
    if state != *stored {
        ctx.recorder.write(Write::ResumeState(state.clone())).await;
        *stored = state;
    }
}

/// The machine's setup from the stored interview and the candidate's history.
async fn setup(session: &Session) -> Option<Setup> {
    let ctx = &session.context;
    let store = &ctx.store;
    let interview = match store.interview(ctx.interview).await {
        Ok(Some(interview)) => interview,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "no conversation: the interview could not be read");
            return None;
        }
    };
    let variant = store.count_reports(interview.user_id).await.unwrap_or(0);
    let user = store.user(interview.user_id).await.ok().flatten();
    let mut redact: Vec<String> = user.iter().flat_map(|u| u.name.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect();
    redact.extend(user.map(|u| u.email));
    let config = &ctx.config;
    Some(Setup {
        // Unique per session: a rejoined interview asks its questions under new ids.
        id_prefix: format!("{}-{}", interview.id, &uuid::Uuid::new_v4().simple().to_string()[..8]),
        role: interview.role,
        kind: interview.interview_type.into(),
        level: interview.experience_level.into(),
        question_count: u32::try_from(interview.question_count).unwrap_or(1),
        job_description: interview.job_description,
        variant: u32::try_from(variant).unwrap_or(0),
        llm: ctx.brain.is_some(),
        redact,
        timing: Timing {
            brain_deadline_ms: config.llm_timeout_ms + 500,
            ..Timing::default()
        },
    })
}

/// A candidate turn, stored with the question it answers, and its `transcript.final`.
async fn store_candidate_turn(
    ctx: &SessionContext,
    machine: &Interviewer,
    turn_id: String,
    text: String,
    words: Vec<Word>,
    (start_ms, end_ms): (u64, u64),
    metrics: String,
) {
    let question_id = machine.current_question_id();
    ctx.recorder
        .write(Write::Turn(Turn {
            id: turn_id.clone(),
            question_id: question_id.clone(),
            speaker: Speaker::Candidate,
            text: text.clone(),
            start_ms,
            end_ms,
            interrupted: false,
            words: serde_json::to_string(&words).unwrap_or_default(),
            metrics,
        }))
        .await;
    if !text.is_empty() {
        ctx.events.send(EventBody::TranscriptFinal { turn_id, question_id, text, words }).await;
    }
}

/// Carries out one action; `Some` when the interview is over.
async fn act(
    session: &Arc<Session>,
    ctx: &SessionContext,
    action: Action,
    reply_to: &mut Option<(u64, u64)>,
) -> Option<(EndReason, Box<Record>)> {
    match action {
        Action::Say { utterance, text, question_id } => {
            let (ctx2, conversation) = (ctx.clone(), ctx.conversation.clone());
            let reply_to = reply_to.take();
            if let Some((_, received_ms)) = reply_to {
                let decide_ms = ctx.events.t_ms().saturating_sub(received_ms);
                ctx.metrics.voice_stage.with_label_values(&["decide"]).observe(decide_ms as f64 / 1000.0);
            }
            session.beside(async move {
                let asked_ms = ctx2.events.t_ms();
                let outcome = ctx2.voice.speak(&ctx2, &text, question_id.as_deref()).await;
                if let Some(first_ms) = outcome.first_audio_ms {
                    let metrics = &ctx2.metrics;
                    metrics.voice_stage.with_label_values(&["first_audio"]).observe(first_ms.saturating_sub(asked_ms) as f64 / 1000.0);
                    if let Some((voice_ended_ms, received_ms)) = reply_to {
                        let total_ms = first_ms.saturating_sub(voice_ended_ms);
                        metrics.voice_to_voice.observe(total_ms as f64 / 1000.0);
                        let turn_ms = received_ms.saturating_sub(voice_ended_ms);
                        tracing::info!(voice_to_voice_ms = total_ms, turn_ms, first_audio_ms = first_ms.saturating_sub(asked_ms), "replied");
                    }
                }
                let ended = Input::UtteranceEnded { utterance, interrupted: outcome.interrupted, spoken: outcome.spoken };
                conversation.send(Message::Input(ended)).await;
            });
        }
        Action::StopSpeaking => {
            ctx.voice.interrupt(ctx).await;
        }
        Action::Emit(event) => ctx.events.send(event_body(event)).await,
        Action::Store(fact) => ctx.recorder.write(write_of(fact)).await,
        Action::AskBrain { request, deadline_ms } => {
            let Some(brain) = ctx.brain.clone() else {
                let failed = Input::BrainFailed { request: request.id, error: "no LLM configured".into() };
                ctx.conversation.send(Message::Input(failed)).await;
                return None;
            };
            let (conversation, metrics) = (ctx.conversation.clone(), ctx.metrics.clone());
            let wait = Duration::from_millis(deadline_ms.saturating_sub(ctx.events.t_ms()));
            session.beside(async move {
                let started = std::time::Instant::now();
                // The voice waits for the decision, not the whole reply: that is the brain's stage.
                let decided_after = std::sync::OnceLock::new();
                let decided = |text: &str| {
                    let _ = decided_after.set(started.elapsed());
                    conversation.offer(Message::Input(Input::BrainDecided { request: request.id, text: text.to_string() }));
                };
                let result = tokio::time::timeout(wait, brain.judge(&request, &decided)).await;
                let (outcome, input) = match result {
                    // The machine validates the reply; checked here too only to count refused ones apart.
                    Ok(Ok(text)) if parse_judgement(&text, &[]).is_err() => ("invalid", Input::BrainReplied { request: request.id, text }),
                    Ok(Ok(text)) => ("ok", Input::BrainReplied { request: request.id, text }),
                    Ok(Err(e)) => (e.outcome(), Input::BrainFailed { request: request.id, error: e.to_string() }),
                    Err(_) => ("timeout", Input::BrainFailed { request: request.id, error: "deadline".into() }),
                };
                if outcome != "ok" {
                    tracing::warn!(outcome, "LLM judgement failed; the built-in brain decides");
                }
                metrics.brain_calls.with_label_values(&["llm", outcome]).inc();
                let stage = decided_after.get().copied().unwrap_or_else(|| started.elapsed());
                metrics.voice_stage.with_label_values(&["brain"]).observe(stage.as_secs_f64());
                conversation.send(Message::Input(input)).await;
            });
        }
        Action::End { reason, record } => return Some((reason, record)),
    }
    None
}

fn write_of(fact: Fact) -> Write {
    match fact {
        Fact::RoundStarted { round } => Write::Round { position: round as i64 + 1, ended: false },
        Fact::RoundEnded { round } => Write::Round { position: round as i64 + 1, ended: true },
        Fact::QuestionAsked { id, round, position, text, source, parent_id } => {
            Write::Question { id, round_position: round as i64 + 1, position: i64::from(position), text, source: source.into(), parent_id }
        }
        Fact::AnswerScored { question_id, ratings, notes, brain } => Write::Score {
            question_id,
            scores: serde_json::to_string(&ratings).unwrap_or_default(),
            notes,
            brain: brain.as_str().to_string(),
        },
    }
}

fn event_body(event: Event) -> EventBody {
    match event {
        Event::Interviewing { paused } => EventBody::SessionState { state: SessionPhase::Interviewing, paused: Some(paused) },
        Event::WrappingUp => EventBody::SessionState { state: SessionPhase::WrappingUp, paused: None },
        Event::Question { question_id, parent_id, round, round_kind, round_title, text, index, total, follow_up } => {
            EventBody::InterviewerQuestion {
                question_id,
                round,
                text,
                round_kind: Some(round_kind),
                round_title: Some(round_title),
                index: Some(index),
                total: Some(total),
                follow_up: Some(follow_up),
                parent_id,
            }
        }
        Event::Scored { question_id, scores, notes, ratings, brain } => EventBody::AnswerScored {
            question_id,
            scores,
            notes,
            ratings: serde_json::to_value(&ratings).ok(),
            brain: Some(brain.as_str().to_string()),
        },
    }
}

/// Writes what is queued, builds the report from the record and what the session measured, stores it and
/// tells the client.
async fn finish(session: &Session, reason: EndReason, record: Record) {
    let ctx = &session.context;
    ctx.recorder.flush().await;
    if reason != EndReason::Completed && record.questions.iter().all(|q| q.ratings.is_empty()) {
        // Nothing was answered (a dropped connection, say): no report, and the interview can be joined again.
        return;
    }
    if reason != EndReason::Completed {
        // A completed interview said so at its closing; an early end says it now.
        ctx.events.send(EventBody::SessionState { state: SessionPhase::WrappingUp, paused: None }).await;
    }
    let delivery = summary::delivery(ctx).await;
    let presence = summary::presence(ctx).await;
    let history: Vec<PastScores> = match ctx.store.past_reports(session.user, Some(ctx.interview), 5).await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|(id, ended_at, document)| {
                let report: Report = serde_json::from_str(&document).ok()?;
                Some(report::past_scores(&id, ended_at, &report))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "earlier reports not read");
            Vec::new()
        }
    };
    let report = report::build(&record, delivery, presence, &history);
    let stored = store_report(session, &report).await;
    tracing::info!(interview = %ctx.interview, reason = reason.as_str(), overall = report.overall, "interview finished");
    if stored {
        let interview_id = ctx.interview.to_string();
        let url = format!("/api/v1/interviews/{interview_id}/report");
        if let Some(mailer) = &ctx.mailer
            && let Ok(Some(user)) = ctx.store.user(session.user).await
        {
            mailer.report_ready(&user.email, &interview_id);
        }
        ctx.events.send(EventBody::ReportReady { interview_id, url }).await;
    }
}

async fn store_report(session: &Session, report: &Report) -> bool {
    use candor_interviewer::grade::Dimension;
    let ctx = &session.context;
    let document = serde_json::to_string(report).unwrap_or_default();
    let delivery_score = report.delivery.wpm.map_or(0.0, |wpm| if (110.0..=170.0).contains(&wpm) { 100.0 } else { 60.0 })
        - report.delivery.fillers_per_min.map_or(0.0, |f| (f64::from(f) * 4.0).min(40.0) as f32) as f64;
    let new = crate::store::NewReport {
        interview: ctx.interview,
        user: session.user,
        overall: f64::from(report.overall),
        technical_depth: f64::from(report.dimension(Dimension::TechnicalDepth)),
        communication: f64::from(report.dimension(Dimension::Communication)),
        structure: f64::from(report.dimension(Dimension::Structure)),
        impact: f64::from(report.dimension(Dimension::Impact)),
        confidence: f64::from(delivery_score as f32).max(0.0),
        presence: report.presence.as_ref().map_or(0.0, |p| f64::from(p.eye_contact) * 100.0),
        strengths: &serde_json::to_string(&report.strengths).unwrap_or_default(),
        improvements: &serde_json::to_string(&report.improvements).unwrap_or_default(),
        summary: &report.summary,
        document: &document,
        roadmap: &serde_json::to_string(&report.learning_path).unwrap_or_default(),
        resources: &serde_json::to_string(&report.learning_path.iter().flat_map(|s| &s.resources).collect::<Vec<_>>()).unwrap_or_default(),
    };
    match ctx.store.insert_report(new).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "report not stored");
            false
        }
    }
}
