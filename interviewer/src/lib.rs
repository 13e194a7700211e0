//! Candor's interviewer: the interview as a pure state machine. Inputs (media connected, the candidate's turns,
//! controls, a brain's replies, ticks) and the time go in; actions (say, stop speaking, emit, store, ask a
//! brain, end) come out. No media, HTTP, database or clock: `src/` of the server carries the actions out.
//!
//! # Layout
//! - `plan`: the rounds an interview has, from role, type and level; the role's track.
//! - `bank`: the question bank and competencies (data files in `data/`, embedded).
//! - `answer`: what an answer shows (example, own actions, result, STAR parts, talking points, keywords).
//! - `grade`: anchored 1-5 ratings per dimension with reasons and evidence quotes.
//! - `jd`: skills and duties of a job description; the coverage ledger.
//! - `brain`: prompts for an LLM brain and validation of its replies.
//! - `stream`: an LLM's streamed reply as its bytes arrive.
//! - `machine`: `Interviewer`, the conversation.
//! - `report`: the report and the learning path.

pub mod answer;
pub mod bank;
pub mod brain;
pub mod grade;
pub mod jd;
pub mod machine;
pub mod plan;
pub mod report;
pub mod stream;

pub use machine::{Action, BrainKind, Control, EndReason, Event, Fact, Input, Interviewer, QuestionSource, Setup, Snapshot, Timing};
