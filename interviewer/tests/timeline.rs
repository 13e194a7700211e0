//! The interviewer on timelines: inputs with times in, actions out, no media. Each test plays a conversation and
//! checks what the interviewer said, asked, stored and decided.

use candor_interviewer::answer::{Word, typed_words};
use candor_interviewer::plan::{InterviewKind, Level};
use candor_interviewer::{Action, BrainKind, Control, EndReason, Event, Fact, Input, Interviewer, Setup, Timing};

const VAGUE: &str = "We worked on it as a team and it went fine.";

/// A strong answer to the bank question `text`: a concrete situation and task, the candidate's own actions in
/// the question's own terms with reasons, and a measured result.
fn strong_answer(text: &str) -> String {
    let bank = candor_interviewer::bank::bank();
    let question = bank.questions.iter().map(|(_, q)| q).find(|q| text.ends_with(&q.text)).expect("a bank question");
    let points = &question.talking_points;
    format!(
        "At my last company my task was to deal with this directly. First I looked at {}. Then I worked out {}, \
         because {} mattered most, and I used {} to do it. I also made sure I explained {} to everyone involved. \
         As a result the problem was solved within two weeks, and the numbers improved by 40 percent.",
        points[0],
        points.get(1).unwrap_or(&points[0]),
        points.last().unwrap_or(&points[0]),
        question.keywords.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        points.get(2).unwrap_or(&points[0]),
    )
}

fn setup(kind: InterviewKind, count: u32) -> Setup {
    Setup {
        id_prefix: "iv".into(),
        role: "Backend engineer".into(),
        kind,
        level: Level::Mid,
        question_count: count,
        job_description: None,
        variant: 0,
        llm: false,
        redact: Vec::new(),
        timing: Timing::default(),
    }
}

/// Drives an interviewer: every utterance plays to its end unless a test cuts it; time moves on by itself.
struct Play {
    machine: Interviewer,
    now: u64,
    log: Vec<Action>,
    /// Utterances said and not yet ended.
    speaking: Option<u64>,
}

impl Play {
    fn new(setup: Setup) -> Self {
        Self { machine: Interviewer::new(setup), now: 0, log: Vec::new(), speaking: None }
    }

    /// Feeds one input at `now + after_ms` and returns the actions.
    fn feed(&mut self, input: Input, after_ms: u64) -> Vec<Action> {
        self.now += after_ms;
        let actions = self.machine.handle(input, self.now);
        for action in &actions {
            match action {
                Action::Say { utterance, .. } => self.speaking = Some(*utterance),
                Action::StopSpeaking => {}
                _ => {}
            }
        }
        self.log.extend(actions.clone());
        actions
    }

    /// Lets the utterance being said finish.
    fn finish_speaking(&mut self) -> Vec<Action> {
        match self.speaking.take() {
            Some(utterance) => self.feed(Input::UtteranceEnded { utterance, interrupted: false, spoken: String::new() }, 3000),
            None => Vec::new(),
        }
    }

    fn answer(&mut self, text: &str) -> Vec<Action> {
        self.finish_speaking();
        self.feed(Input::CandidateStarted, 500);
        self.feed(Input::CandidateFinished { words: typed_words(text), wpm: Some(140.0) }, 8000)
    }

    fn start(&mut self) -> Vec<Action> {
        self.feed(Input::Connected, 0)
    }

    /// The text of the question being asked now (the last one emitted).
    fn current_question(&self) -> String {
        questions(&self.log).last().map(|q| q.0.clone()).expect("a question was asked")
    }

    fn answer_well(&mut self) -> Vec<Action> {
        let question = self.current_question();
        let text = strong_answer(&question);
        self.answer(&text)
    }
}

fn said(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::Say { text, .. } = a { Some(text.clone()) } else { None }).collect()
}

fn questions(actions: &[Action]) -> Vec<(String, bool, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(Event::Question { text, follow_up, index, .. }) => Some((text.clone(), *follow_up, *index)),
            _ => None,
        })
        .collect()
}

fn ended(actions: &[Action]) -> Option<(EndReason, usize)> {
    actions.iter().find_map(|a| match a {
        Action::End { reason, record } => Some((*reason, record.questions.len())),
        _ => None,
    })
}

#[test]
fn the_greeting_gives_the_plan_and_asks_the_first_question() {
    let mut play = Play::new(setup(InterviewKind::Mixed, 4));
    let actions = play.start();
    let greeting = &said(&actions)[0];
    assert!(greeting.starts_with("Hello") && greeting.contains("4 questions"), "{greeting}");
    let asked = questions(&actions);
    assert_eq!(asked.len(), 1);
    assert!(greeting.ends_with(&asked[0].0), "the greeting ends with the first question: {greeting}");
    assert!(actions.iter().any(|a| matches!(a, Action::Store(Fact::RoundStarted { round: 0 }))));
    assert!(actions.iter().any(|a| matches!(a, Action::Emit(Event::Interviewing { paused: false }))));
}

#[test]
fn a_vague_answer_gets_a_follow_up_and_a_strong_one_does_not() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    let after_vague = play.answer(VAGUE);
    let follow = questions(&after_vague);
    assert_eq!(follow.len(), 1, "{after_vague:?}");
    assert!(follow[0].1, "a follow-up: {follow:?}");
    assert!(!after_vague.iter().any(|a| matches!(a, Action::Emit(Event::Scored { .. }))), "not graded yet");

    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    let after_strong = play.answer_well();
    let next = questions(&after_strong);
    assert_eq!(next.len(), 1);
    assert!(!next[0].1 && next[0].2 == 2, "the next planned question, no follow-up: {next:?}");
    assert!(after_strong.iter().any(|a| matches!(a, Action::Emit(Event::Scored { .. }))));
}

#[test]
fn follow_ups_stop_after_two_and_the_answer_is_graded() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    let mut follow_ups = 0;
    for _ in 0..3 {
        let actions = play.answer(VAGUE);
        follow_ups += questions(&actions).iter().filter(|q| q.1).count();
        if actions.iter().any(|a| matches!(a, Action::Emit(Event::Scored { .. }))) {
            break;
        }
    }
    assert_eq!(follow_ups, 2);
    let scored = play.log.iter().filter(|a| matches!(a, Action::Emit(Event::Scored { .. }))).count();
    assert_eq!(scored, 1, "graded once, with the follow-ups' answers");
}

#[test]
fn the_interview_ends_by_itself_after_the_planned_questions_and_the_closing() {
    let mut play = Play::new(setup(InterviewKind::Mixed, 3));
    play.start();
    let mut rounds_started = Vec::new();
    for _ in 0..3 {
        let actions = play.answer_well();
        rounds_started.extend(actions.iter().filter_map(|a| if let Action::Store(Fact::RoundStarted { round }) = a { Some(*round) } else { None }));
    }
    let closing = said(&play.log).last().cloned().unwrap();
    assert!(closing.contains("Do you have any questions for me?"), "{closing}");
    assert!(play.log.iter().any(|a| matches!(a, Action::Emit(Event::WrappingUp))));
    let reply = play.answer("No, thank you.");
    assert!(said(&reply)[0].contains("report"), "{reply:?}");
    let end = play.finish_speaking();
    assert_eq!(ended(&end), Some((EndReason::Completed, 3)));
    assert!(!rounds_started.is_empty(), "later rounds start by themselves: {rounds_started:?}");
    assert!(play.machine.is_ended());
    assert!(play.feed(Input::Tick, 1000).is_empty(), "nothing after the end");
}

#[test]
fn a_candidates_question_at_the_closing_gets_a_short_honest_answer() {
    let mut play = Play::new(setup(InterviewKind::Hr, 1));
    play.start();
    play.answer_well();
    let reply = play.answer("What does a typical day look like for the team?");
    let text = &said(&reply)[0];
    assert!(text.contains("practice interviewer") && text.contains("report"), "{text}");
}

#[test]
fn a_skipped_question_counts_towards_the_plan() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    play.finish_speaking();
    let skipped = play.feed(Input::Control(Control::Skip), 1000);
    assert!(said(&skipped)[0].starts_with("Sure, let's skip"), "{skipped:?}");
    assert_eq!(questions(&skipped)[0].2, 2);
    play.answer_well();
    assert!(said(&play.log).last().unwrap().contains("any questions for me"), "two planned questions, then the closing");
    play.feed(Input::Control(Control::End), 100);
    let (reason, asked) = ended(&play.log).unwrap();
    assert_eq!((reason, asked), (EndReason::CandidateEnded, 2));
}

#[test]
fn repeats_are_coalesced_while_the_question_is_being_said() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    let first = play.start();
    let question = questions(&first)[0].0.clone();
    play.finish_speaking();
    let again = play.feed(Input::Control(Control::Repeat), 1000);
    assert_eq!(said(&again), vec![question.clone()]);
    for _ in 0..5 {
        assert!(play.feed(Input::Control(Control::Repeat), 10).is_empty(), "a burst says it once");
    }
    play.finish_speaking();
    assert_eq!(said(&play.feed(Input::Control(Control::Repeat), 1000)), vec![question]);
}

#[test]
fn pause_and_resume_work_at_every_phase_and_never_leave_the_flow_stuck() {
    // While a question is being said, while listening, and at the closing.
    for phase in 0..3 {
        let mut play = Play::new(setup(InterviewKind::Behavioral, 1));
        play.start();
        if phase >= 1 {
            play.finish_speaking();
        }
        if phase == 2 {
            play.answer_well();
            play.finish_speaking();
        }
        let paused = play.feed(Input::Control(Control::Pause), 500);
        assert!(paused.iter().any(|a| matches!(a, Action::Emit(Event::Interviewing { paused: true }))), "{phase}");
        if phase == 0 {
            assert!(paused.contains(&Action::StopSpeaking));
        }
        assert!(play.feed(Input::Tick, 60_000).is_empty(), "no silence prompts while paused");
        assert!(play.feed(Input::CandidateFinished { words: typed_words("just talking to myself"), wpm: None }, 100).is_empty());
        let resumed = play.feed(Input::Control(Control::Resume), 1000);
        let text = said(&resumed);
        assert!(text.len() == 1 && text[0].starts_with("Welcome back"), "{phase}: {resumed:?}");
        if phase == 2 {
            play.answer("No.");
        } else {
            play.answer_well();
        }
        let until_end = play.finish_speaking();
        if phase == 2 {
            assert!(ended(&until_end).is_some(), "the closing resumed and ended");
        } else {
            assert!(said(&play.log).last().unwrap().contains("any questions"), "{phase}: the interview went on");
        }
    }
}

#[test]
fn a_dropped_candidate_keeps_the_answer_begun_and_hears_the_question_again_on_return() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    play.finish_speaking();
    let first = play.current_question();
    play.feed(Input::CandidateStarted, 500);
    // The connection drops mid-answer: nothing is said to no one, and the audio already received is still
    // transcribed: its words join the answer without it being judged.
    assert!(said(&play.feed(Input::Disconnected, 2000)).is_empty());
    let begun = play.feed(Input::CandidateFinished { words: typed_words("At my last company I led the migration"), wpm: None }, 900);
    assert!(begun.iter().all(|a| !matches!(a, Action::Say { .. } | Action::Emit(Event::Scored { .. }))), "{begun:?}");
    // Time passes while away: no silence prompts, no idle end (the server's grace period decides).
    assert!(play.feed(Input::Tick, 20 * 60_000).is_empty());
    // Back: the same question, continued.
    let back = play.feed(Input::Reconnected, 1000);
    assert!(back.iter().any(|a| matches!(a, Action::Emit(Event::Interviewing { paused: false }))));
    let text = said(&back);
    assert!(text.len() == 1 && text[0].starts_with("Welcome back. Please go on") && text[0].ends_with(&first), "{text:?}");
    assert!(play.feed(Input::Reconnected, 10).is_empty(), "a second return says nothing");
    // The rest of the answer joins what was said before the drop, and the interview moves on.
    play.answer(&strong_answer(&first));
    let scored = play.log.iter().find_map(|a| match a {
        Action::Store(Fact::AnswerScored { question_id, .. }) => Some(question_id.clone()),
        _ => None,
    });
    assert!(scored.is_some(), "the answer was judged once the candidate went on");
    play.finish_speaking();
    assert_ne!(play.current_question(), first, "the next question");

    // A drop while the question is being said: it is cut, and asked again on return.
    play.feed(Input::Disconnected, 100);
    let next = play.current_question();
    let back = play.feed(Input::Reconnected, 5000);
    assert_eq!(said(&back), vec![format!("Welcome back. {next}")]);

    // A candidate who paused before the drop comes back paused.
    play.finish_speaking();
    play.feed(Input::Control(Control::Pause), 100);
    play.feed(Input::Disconnected, 100);
    let back = play.feed(Input::Reconnected, 100);
    assert_eq!(back, vec![Action::Emit(Event::Interviewing { paused: true })]);
    assert_eq!(said(&play.feed(Input::Control(Control::Resume), 100)), vec![format!("Welcome back. {next}")]);
}

#[test]
fn an_interview_resumes_from_its_snapshot_in_a_new_session() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 3));
    assert!(play.machine.snapshot().is_none(), "nothing to resume before it starts");
    play.start();
    play.answer_well();
    play.finish_speaking();
    let second = play.current_question();
    play.feed(Input::CandidateStarted, 500);
    // The server stops mid-answer: the interviewer holds, the answer so far is transcribed, and the snapshot goes
    // through storage as JSON.
    play.feed(Input::Disconnected, 3000);
    play.feed(Input::CandidateFinished { words: typed_words("At my last company I led the migration"), wpm: None }, 1000);
    let stored = serde_json::to_string(&play.machine.snapshot().expect("a started interview")).unwrap();
    let snapshot: candor_interviewer::Snapshot = serde_json::from_str(&stored).unwrap();

    // A new session with a fresh clock: connecting resumes the same question, continued, with no greeting.
    let mut later = Play { machine: Interviewer::restore(setup(InterviewKind::Behavioral, 3), snapshot), now: 0, log: Vec::new(), speaking: None };
    let back = later.feed(Input::Connected, 100);
    let text = said(&back);
    assert!(text.len() == 1 && text[0].starts_with("Welcome back. Please go on") && text[0].ends_with(&second), "{text:?}");
    // The rest of the answer joins the part said before the restart; the interview goes on to its end, and the
    // record holds every answer across both sessions.
    let rest = strong_answer(&second);
    later.answer(&rest);
    for _ in 0..10 {
        if later.machine.is_ended() {
            break;
        }
        later.finish_speaking();
        if said(&later.log).last().is_some_and(|t| t.contains("any questions")) {
            later.answer("No.");
        } else if !questions(&later.log).is_empty() {
            later.answer_well();
        }
    }
    let Some(Action::End { record, .. }) = later.log.iter().find(|a| matches!(a, Action::End { .. })) else { panic!("{:?}", later.log) };
    assert_eq!(record.questions.len(), 3, "{record:?}");
    assert!(record.questions.iter().all(|q| !q.ratings.is_empty()), "every question graded");
    assert!(record.questions[1].answer.starts_with("At my last company I led the migration"), "{}", record.questions[1].answer);
    assert!(record.questions[1].answer.ends_with(&rest));
}

#[test]
fn end_works_at_every_phase_and_keeps_what_was_answered() {
    for phase in 0..4 {
        let mut play = Play::new(setup(InterviewKind::Behavioral, 3));
        if phase >= 1 {
            play.start();
        }
        if phase >= 2 {
            play.answer_well();
        }
        if phase == 3 {
            play.finish_speaking();
            play.feed(Input::CandidateFinished { words: typed_words(VAGUE), wpm: None }, 1000);
        }
        let actions = play.feed(Input::Control(Control::End), 100);
        let (reason, _) = ended(&actions).unwrap_or_else(|| panic!("phase {phase}: {actions:?}"));
        assert_eq!(reason, EndReason::CandidateEnded);
        if phase >= 2 {
            let Some(Action::End { record, .. }) = actions.iter().find(|a| matches!(a, Action::End { .. })) else { unreachable!() };
            assert!(!record.questions[0].ratings.is_empty(), "the answered question is graded");
        }
    }
}

#[test]
fn an_interruption_during_a_transition_never_leaves_the_flow_stuck() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 3));
    play.start();
    let transition = play.answer_well();
    let Some(Action::Say { utterance, text, .. }) = transition.iter().find(|a| matches!(a, Action::Say { .. })).cloned() else {
        panic!("{transition:?}")
    };
    let next_question = questions(&transition)[0].0.clone();
    // The candidate cuts in while "Thank you. ..." plays, before the next question was heard.
    let cut = play.feed(Input::CandidateStarted, 300);
    assert_eq!(cut, vec![Action::StopSpeaking]);
    play.speaking = None;
    play.feed(Input::UtteranceEnded { utterance, interrupted: true, spoken: text.split('.').next().unwrap().to_string() }, 50);
    let after = play.feed(Input::CandidateFinished { words: typed_words("Oh and one more thing, we also documented it."), wpm: None }, 3000);
    let again = said(&after);
    assert_eq!(again.len(), 1);
    assert!(again[0].ends_with(&next_question), "the unheard question is asked again: {again:?}");
    // Heard this time: the next answer is the answer to it.
    let next = play.answer_well();
    assert_eq!(questions(&next)[0].2, 3);
}

#[test]
fn silence_after_a_question_gets_two_gentle_prompts_then_patience() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    play.finish_speaking();
    let mut prompts = 0;
    for _ in 0..12 {
        let actions = play.feed(Input::Tick, 10_000);
        if said(&actions).iter().any(|t| t.starts_with("Take your time")) {
            prompts += 1;
            play.finish_speaking();
        }
    }
    assert_eq!(prompts, 2);
    assert!(!play.machine.is_ended());
}

#[test]
fn a_long_absence_ends_the_interview_keeping_what_was_answered() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 3));
    play.start();
    play.answer_well();
    play.finish_speaking();
    let mut end = None;
    for _ in 0..40 {
        let actions = play.feed(Input::Tick, 10_000);
        if let Some(e) = ended(&actions) {
            end = Some(e);
            break;
        }
    }
    assert_eq!(end, Some((EndReason::Idle, 2)), "the unanswered second question is kept too");
}

#[test]
fn with_an_llm_each_answer_is_judged_by_it_and_failures_fall_back_at_once() {
    let mut s = setup(InterviewKind::Behavioral, 3);
    s.llm = true;
    let mut play = Play::new(s);
    play.start();
    let asked = play.answer_well();
    let Some(Action::AskBrain { request, deadline_ms }) = asked.iter().find(|a| matches!(a, Action::AskBrain { .. })).cloned() else {
        panic!("{asked:?}")
    };
    assert!(deadline_ms > play.now && request.messages.len() == 2);
    let reply = serde_json::json!({
        "assessment": {
            "technical_depth": {"reason": "Specific.", "evidence": "the problem was solved within two weeks", "rating": 5},
            "communication": {"reason": "Clear.", "evidence": "", "rating": 4},
            "structure": {"reason": "Full story.", "evidence": "", "rating": 5},
            "impact": {"reason": "Measured.", "evidence": "the numbers improved by 40 percent", "rating": 5}
        },
        "follow_up": {"needed": false, "question": ""}
    });
    let judged = play.feed(Input::BrainReplied { request: request.id, text: reply.to_string() }, 900);
    let scored = judged.iter().find_map(|a| if let Action::Emit(Event::Scored { brain, scores, ratings, .. }) = a { Some((*brain, scores.clone(), ratings.clone())) } else { None });
    let (brain, scores, ratings) = scored.expect("scored by the LLM");
    assert_eq!(brain, BrainKind::Llm);
    assert_eq!(scores["technical_depth"], 100);
    assert!(ratings[0].evidence.as_ref().unwrap().text.starts_with("the problem was solved"), "{ratings:?}");

    // Invalid JSON: the built-in brain decides at once.
    let asked = play.answer_well();
    let Some(Action::AskBrain { request, .. }) = asked.iter().find(|a| matches!(a, Action::AskBrain { .. })).cloned() else { panic!() };
    let fallback = play.feed(Input::BrainReplied { request: request.id, text: "{ not json".into() }, 100);
    assert!(fallback.iter().any(|a| matches!(a, Action::Emit(Event::Scored { brain: BrainKind::BuiltIn, .. }))));
    assert_eq!(questions(&fallback).len(), 1, "and the next question still comes");

    // No reply by the deadline: the built-in brain decides on the next tick.
    let asked = play.answer_well();
    let Some(Action::AskBrain { request, deadline_ms }) = asked.iter().find(|a| matches!(a, Action::AskBrain { .. })).cloned() else { panic!() };
    let early = play.feed(Input::Tick, 100);
    assert!(early.is_empty());
    let late = play.feed(Input::Tick, deadline_ms - play.now);
    assert!(late.iter().any(|a| matches!(a, Action::Emit(Event::Scored { brain: BrainKind::BuiltIn, .. }))), "{late:?}");
    assert!(play.feed(Input::BrainReplied { request: request.id, text: reply.to_string() }, 10).is_empty(), "a late reply is ignored");
}

/// An LLM reply in the schema's order, the spoken decision first; cut at the end of the decision when `cut`.
fn streamed_reply(follow_up: Option<&str>, cut: bool) -> String {
    let decision = serde_json::json!({"missing": "", "needed": follow_up.is_some(), "question": follow_up.unwrap_or("")});
    let r = serde_json::json!({"reason": "Judged.", "evidence": "", "rating": 4});
    let reply = format!(r#"{{"follow_up": {decision}, "assessment": {}}}"#, serde_json::json!({"technical_depth": r, "communication": r, "structure": r, "impact": r}));
    if cut { reply[..reply.find("\"assessment\"").unwrap()].to_string() } else { reply }
}

fn asked_brain(actions: &[Action]) -> (u64, u64) {
    actions.iter().find_map(|a| if let Action::AskBrain { request, deadline_ms } = a { Some((request.id, *deadline_ms)) } else { None }).expect("the brain is asked")
}

fn scored(actions: &[Action]) -> Vec<(String, BrainKind)> {
    actions.iter().filter_map(|a| if let Action::Emit(Event::Scored { question_id, brain, .. }) = a { Some((question_id.clone(), *brain)) } else { None }).collect()
}

#[test]
fn the_llms_spoken_decision_is_acted_on_before_its_ratings_arrive() {
    let mut s = setup(InterviewKind::Behavioral, 3);
    s.llm = true;
    let mut play = Play::new(s);
    play.start();

    // No follow-up: the next question is said at once; the ratings follow for the answered one.
    let (request, _) = asked_brain(&play.answer_well());
    let first = play.machine.current_question_id().unwrap();
    let decided = play.feed(Input::BrainDecided { request, text: streamed_reply(None, true) }, 300);
    assert_eq!(questions(&decided).len(), 1, "the next question comes with the decision: {decided:?}");
    assert!(scored(&decided).is_empty(), "ratings are still streaming");
    let rated = play.feed(Input::BrainReplied { request, text: streamed_reply(None, false) }, 900);
    assert_eq!(scored(&rated), [(first, BrainKind::Llm)]);

    // A follow-up: asked at once; the rest of that reply changes nothing.
    let (request, _) = asked_brain(&play.answer_well());
    let second = play.machine.current_question_id().unwrap();
    let decided = play.feed(Input::BrainDecided { request, text: streamed_reply(Some("What did you measure afterwards?"), true) }, 300);
    assert_eq!(questions(&decided), [("What did you measure afterwards?".to_string(), true, 2)]);
    assert!(play.feed(Input::BrainReplied { request, text: streamed_reply(Some("What did you measure afterwards?"), false) }, 900).is_empty());

    // The follow-up answered and decided on, then the stream fails: the built-in brain rates the question.
    let (request, _) = asked_brain(&play.answer("The p99 latency went from 900 to 300 milliseconds."));
    let decided = play.feed(Input::BrainDecided { request, text: streamed_reply(None, true) }, 300);
    assert_eq!(questions(&decided).len(), 1);
    let failed = play.feed(Input::BrainFailed { request, error: "broke off".into() }, 500);
    assert_eq!(scored(&failed), [(second, BrainKind::BuiltIn)]);

    // Decided on the last answer, and the ratings never come: the deadline rates it; nothing is lost at the end.
    let (request, deadline_ms) = asked_brain(&play.answer_well());
    let last = play.machine.current_question_id().unwrap();
    let closing = play.feed(Input::BrainDecided { request, text: streamed_reply(None, true) }, 300);
    assert!(said(&closing)[0].contains("That's all my questions"), "{closing:?}");
    let late = play.feed(Input::Tick, deadline_ms - play.now);
    assert_eq!(scored(&late), [(last, BrainKind::BuiltIn)]);
    play.finish_speaking();
    let end = play.feed(Input::Control(Control::End), 100);
    let record = end.iter().find_map(|a| if let Action::End { record, .. } = a { Some(record.clone()) } else { None }).unwrap();
    assert!(record.questions.iter().all(|q| q.ratings.len() == 4), "every answer rated");
}

#[test]
fn a_job_description_steers_the_questions_and_fills_the_coverage_ledger() {
    let mut with_jd = setup(InterviewKind::Technical, 3);
    with_jd.job_description = Some(
        "We are hiring a backend engineer.\n- Own our PostgreSQL schemas and query performance\n\
         - Design caching with Redis\n- Run services on Kubernetes".into(),
    );
    let mut play = Play::new(with_jd.clone());
    let first = play.start();
    let plain_first = questions(&Play::new(setup(InterviewKind::Technical, 3)).start())[0].0.clone();
    let asked = questions(&first)[0].0.clone();
    assert_ne!(asked, plain_first, "the job description changes which question comes first");
    while !said(&play.log).last().unwrap().contains("any questions for me") {
        let text = format!("{} I kept the data in PostgreSQL and cached the hot reads in Redis.", strong_answer(&play.current_question()));
        play.answer(&text);
    }
    play.answer("No.");
    let end = play.finish_speaking();
    let Some(Action::End { record, .. }) = end.iter().find(|a| matches!(a, Action::End { .. })) else { panic!("{end:?}") };
    let job = record.job.as_ref().expect("a job profile");
    assert!(job.skills.iter().any(|s| s == "postgresql") && job.skills.iter().any(|s| s == "redis"), "{:?}", job.skills);
    assert!(record.ledger.skills.get("redis").copied().unwrap_or(0) >= 1, "{:?}", record.ledger.skills);
    assert_eq!(record.ledger.skills.get("kubernetes").copied(), Some(0), "never shown");
}

#[test]
fn the_same_role_and_level_get_the_same_core_questions_and_practice_rotates_them() {
    let first = |variant| {
        let mut s = setup(InterviewKind::Behavioral, 3);
        s.variant = variant;
        questions(&Play::new(s).start())[0].0.clone()
    };
    assert_eq!(first(0), first(0));
    assert_ne!(first(0), first(1));
}

#[test]
fn a_typed_answer_is_an_answer() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 2));
    play.start();
    play.finish_speaking();
    let typed = strong_answer(&play.current_question());
    let actions = play.feed(Input::TypedAnswer(typed), 20_000);
    assert_eq!(questions(&actions)[0].2, 2, "{actions:?}");
    let _ = Word::typed("x");
}

#[test]
fn an_answer_typed_over_the_question_counts_and_the_late_end_of_its_cut_changes_nothing() {
    let mut play = Play::new(setup(InterviewKind::Behavioral, 3));
    let greeting = play.start();
    let Some(Action::Say { utterance, .. }) = greeting.iter().find(|a| matches!(a, Action::Say { .. })).cloned() else { panic!() };
    // Typed while the question is still being said: the candidate read it on screen.
    let typed = strong_answer(&play.current_question());
    let next = play.feed(Input::TypedAnswer(typed), 400);
    assert_eq!(next.first(), Some(&Action::StopSpeaking));
    assert_eq!(questions(&next)[0].2, 2, "the next question comes: {next:?}");
    // The cut greeting's end arrives only now, while the second question plays: it must not mark that one unheard.
    play.feed(Input::UtteranceEnded { utterance, interrupted: true, spoken: "Hello, and".into() }, 50);
    let after = play.answer_well();
    assert_eq!(questions(&after)[0].2, 3, "the answer answers the second question: {after:?}");
}
