//! Whatever a candidate types or says, whatever an LLM endpoint answers, in whatever order with controls and
//! time passing, the interviewer never panics, and everything it asks a brain is answered into a flow that goes
//! on. Frames split on NUL; a frame's first byte picks the input, the rest is its text.
#![no_main]

use candor_interviewer::answer::Word;
use candor_interviewer::plan::{InterviewKind, Level};
use candor_interviewer::{Action, Control, Input, Interviewer, Setup, Timing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut machine = Interviewer::new(Setup {
        id_prefix: "fz".into(),
        role: "Backend engineer".into(),
        kind: InterviewKind::Mixed,
        level: Level::Mid,
        question_count: 3,
        job_description: Some("Build payment APIs in Rust; own on-call; mentor engineers.".into()),
        variant: 0,
        llm: true,
        redact: vec!["Ada".into()],
        timing: Timing::default(),
    });
    let mut now = 0u64;
    let (mut utterance, mut request) = (None, None);
    let mut inputs = vec![Input::Connected];
    for frame in data.split(|b| *b == 0) {
        let Some((&kind, rest)) = frame.split_first() else { continue };
        let text = String::from_utf8_lossy(rest).into_owned();
        now += u64::from(kind) * 97;
        inputs.push(match kind % 14 {
            0 => Input::TypedAnswer(text),
            1 => Input::CandidateStarted,
            2 => Input::CandidateFinished {
                words: text.split_whitespace().enumerate().map(|(i, w)| Word { text: w.into(), start_ms: Some(i as u64 * 300), end_ms: Some(i as u64 * 300 + 250) }).collect(),
                wpm: Some(f32::from(kind)),
            },
            3 => Input::UtteranceEnded { utterance: utterance.unwrap_or(0), interrupted: kind % 2 == 0, spoken: text },
            4 => Input::BrainDecided { request: request.unwrap_or(0), text },
            5 => Input::BrainReplied { request: request.unwrap_or(0), text },
            6 => Input::BrainFailed { request: request.unwrap_or(0), error: text },
            7 => Input::Control(Control::Repeat),
            8 => Input::Control(Control::Skip),
            9 => Input::Control(Control::Pause),
            10 => Input::Control(Control::Resume),
            11 => Input::Disconnected,
            12 => Input::Reconnected,
            _ => Input::Tick,
        });
    }
    inputs.push(Input::Control(Control::End));
    for input in inputs {
        for action in machine.handle(input, now) {
            match action {
                Action::Say { utterance: id, .. } => utterance = Some(id),
                Action::AskBrain { request: r, .. } => request = Some(r.id),
                _ => {}
            }
        }
    }
    assert!(machine.is_ended(), "the end control always ends the interview");
});
