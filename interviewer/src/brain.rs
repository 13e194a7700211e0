//! Asking a brain (a language model behind an OpenAI-compatible endpoint) and checking what it says. The state
//! machine asks for a judgement of an answer; the server's client carries the request and hands back the text.
//! Everything here is pure: the prompt (role, level, job description, rubric anchors, the conversation; never
//! the candidate's identity), the JSON schema of the reply, and its validation. A reply that fails validation is
//! a failed call: the built-in brain decides instead.
//!
//! The reply's first part is the spoken decision (what the answer lacks, whether to follow up, and the follow-up
//! question); the ratings come after it. `decision_in` finds that part in a reply still streaming, so the
//! interviewer speaks as soon as it is complete while the ratings are still being written.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::answer::{Quote, Word, normalize};
use crate::grade::{Dimension, Rating, rubric};

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A judgement to ask a brain for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrainRequest {
    pub id: u64,
    pub messages: Vec<Message>,
    /// The JSON schema the reply must follow (`response_format`).
    pub schema: Value,
}

/// What the interview looks like to the brain.
pub struct Context<'a> {
    pub role: &'a str,
    pub level: &'a str,
    pub job_description: Option<&'a str>,
    /// Earlier questions and answers, oldest first (already shortened).
    pub history: &'a [(String, String)],
    pub question: &'a str,
    pub talking_points: &'a [String],
    /// The answer so far: each (question asked, answer) of this question's thread, follow-ups included.
    pub thread: &'a [(String, String)],
    pub follow_ups_left: usize,
    /// Words never to send: the candidate's name parts and email.
    pub redact: &'a [String],
}

/// The brain's judgement, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub ratings: Vec<Rating>,
    /// A follow-up to ask, if the brain found the answer lacking.
    pub follow_up: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply is not the JSON asked for: {0}")]
    Json(String),
    #[error("the reply breaks the schema: {0}")]
    Schema(String),
}

/// Replaces `words` (case-insensitive, whole words) with "[redacted]".
pub fn redact(text: &str, words: &[String]) -> String {
    text.split(' ')
        .map(|w| {
            let bare = normalize(w);
            if !bare.is_empty() && words.iter().any(|r| normalize(r) == bare || (r.contains('@') && w.contains(r.as_str()))) {
                "[redacted]".to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn judge_request(id: u64, ctx: &Context) -> BrainRequest {
    let scales: String = Dimension::ALL
        .iter()
        .map(|d| {
            let scale = rubric().dimension(*d);
            let anchors: String =
                scale.anchors.iter().enumerate().map(|(i, a)| format!("  {}: {a}\n", i + 1)).collect();
            format!("{} ({}):\n{anchors}", d.as_str(), scale.name)
        })
        .collect();
    let system = format!(
        "You are a fair, structured interviewer running a mock interview for a {level} {role} candidate. You rate \
         one answer at a time on four dimensions, each on the anchored 1-5 scale below, judging only the content \
         of what the candidate said. Fillers, pauses, grammar, accent and anything about the person never affect \
         a rating. First decide whether one follow-up question is needed: say what the answer lacks, if anything, \
         then decide. Follow up only when the answer lacks a concrete example, the candidate's own actions, a \
         result, context, depth, or did not address the question; never after a strong answer. A follow-up is one \
         short spoken question. Then rate: for each dimension give the reason first, then a short quote of the \
         candidate's own words as evidence (copied exactly, or empty if there is none), then the rating.\n\n{scales}",
        level = ctx.level,
        role = ctx.role,
    );
    let mut user = String::new();
    if let Some(jd) = ctx.job_description {
        user.push_str(&format!("Job description:\n{}\n\n", truncate(jd, 2000)));
    }
    if !ctx.history.is_empty() {
        user.push_str("Earlier in the interview:\n");
        for (q, a) in ctx.history {
            user.push_str(&format!("Q: {q}\nA: {}\n", truncate(a, 400)));
        }
        user.push('\n');
    }
    user.push_str(&format!("Question: {}\nA strong answer covers: {}\n\n", ctx.question, ctx.talking_points.join("; ")));
    for (asked, answer) in ctx.thread {
        user.push_str(&format!("Interviewer: {asked}\nCandidate: {answer}\n"));
    }
    user.push_str(&format!("\nFollow-ups still allowed: {}.", ctx.follow_ups_left));
    BrainRequest {
        id,
        messages: vec![
            Message { role: "system".into(), content: system },
            Message { role: "user".into(), content: redact(&user, ctx.redact) },
        ],
        schema: schema(),
    }
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars { text.to_string() } else { format!("{}...", text.chars().take(chars).collect::<String>()) }
}

/// The reply's JSON schema: the spoken decision first (what is missing before whether to follow up), then the
/// ratings, each reason before its rating, as the prompt asks. Strict structured outputs keep this order.
pub fn schema() -> Value {
    let rating = json!({
        "type": "object",
        "properties": {
            "reason": {"type": "string"},
            "evidence": {"type": "string"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5}
        },
        "required": ["reason", "evidence", "rating"],
        "additionalProperties": false
    });
    let dimensions: serde_json::Map<String, Value> = Dimension::ALL.iter().map(|d| (d.as_str().to_string(), rating.clone())).collect();
    json!({
        "type": "object",
        "properties": {
            "follow_up": {
                "type": "object",
                "properties": {"missing": {"type": "string"}, "needed": {"type": "boolean"}, "question": {"type": "string"}},
                "required": ["missing", "needed", "question"],
                "additionalProperties": false
            },
            "assessment": {
                "type": "object",
                "properties": dimensions,
                "required": Dimension::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                "additionalProperties": false
            }
        },
        "required": ["follow_up", "assessment"],
        "additionalProperties": false
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRating {
    reason: String,
    evidence: String,
    rating: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFollowUp {
    /// What the answer lacks (the decision's reason); older replies may leave it out.
    #[serde(default, rename = "missing")]
    _missing: String,
    needed: bool,
    question: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    assessment: std::collections::BTreeMap<String, RawRating>,
    follow_up: RawFollowUp,
}

/// Checks a reply against the schema and the answer: every dimension rated 1-5 with a reason; evidence that is
/// not the candidate's own words is replaced by the built-in quote; a follow-up is one short question.
/// Validates a reply; evidence quotes are kept only where they are the candidate's own `words`.
pub fn parse_judgement(text: &str, words: &[Word]) -> Result<Judgement, ReplyError> {
    let json = text.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```");
    let raw: RawReply = serde_json::from_str(json.trim()).map_err(|e| ReplyError::Json(e.to_string()))?;
    let mut ratings = Vec::new();
    for dimension in Dimension::ALL {
        let r = raw.assessment.get(dimension.as_str()).ok_or_else(|| ReplyError::Schema(format!("no {}", dimension.as_str())))?;
        let value = u8::try_from(r.rating).ok().filter(|v| (1..=5).contains(v));
        let value = value.ok_or_else(|| ReplyError::Schema(format!("{} rated {}", dimension.as_str(), r.rating)))?;
        let reason = r.reason.trim();
        if reason.is_empty() || reason.len() > 400 {
            return Err(ReplyError::Schema(format!("{}: reason missing or too long", dimension.as_str())));
        }
        let evidence = own_words(&r.evidence, words);
        ratings.push(Rating {
            dimension,
            rating: value,
            anchor: rubric().anchor(dimension, value).to_string(),
            reason: reason.to_string(),
            evidence,
        });
    }
    if raw.assessment.len() != Dimension::ALL.len() {
        return Err(ReplyError::Schema("unknown dimensions in the assessment".into()));
    }
    Ok(Judgement { ratings, follow_up: follow_up(&raw.follow_up)? })
}

/// The follow-up to ask, checked: one short spoken question.
fn follow_up(raw: &RawFollowUp) -> Result<Option<String>, ReplyError> {
    if !raw.needed {
        return Ok(None);
    }
    let q = raw.question.trim();
    let words = q.split_whitespace().count();
    if !(3..=45).contains(&words) || !q.ends_with('?') {
        return Err(ReplyError::Schema(format!("the follow-up is not one short question: {q:?}")));
    }
    Ok(Some(q.to_string()))
}

/// The spoken decision in a reply still streaming: `None` until its `follow_up` object is complete, then the
/// follow-up to ask (or none), checked as `parse_judgement` checks it.
pub fn decision_in(partial: &str) -> Option<Result<Option<String>, ReplyError>> {
    let object = top_level_object(partial, "follow_up")?;
    Some(serde_json::from_str::<RawFollowUp>(object).map_err(|e| ReplyError::Json(e.to_string())).and_then(|raw| follow_up(&raw)))
}

/// The text of the complete object under the top-level `key` of a JSON document that may be cut short.
fn top_level_object<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut string_start = 0;
    let mut last_string: Option<(usize, usize)> = None;
    let mut start: Option<usize> = None;
    for (i, c) in json.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    in_string = false;
                    last_string = Some((string_start, i));
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => (in_string, string_start) = (true, i + 1),
            '{' => {
                // An object opening right after `"key":` at the top level.
                let after_key = last_string.is_some_and(|(a, b)| depth == 1 && &json[a..b] == key && json[b + 1..i].trim() == ":");
                depth += 1;
                if after_key && start.is_none() {
                    start = Some(i);
                }
            }
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 1 && let Some(s) = start {
                    return Some(&json[s..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The quote as the candidate's words with their times, if it is their words; else none.
fn own_words(quote: &str, answer: &[Word]) -> Option<Quote> {
    let wanted: Vec<String> = quote.split_whitespace().map(normalize).filter(|w| !w.is_empty()).collect();
    if wanted.len() < 2 {
        return None;
    }
    let said: Vec<String> = answer.iter().map(|w| normalize(&w.text)).collect();
    let at = said.windows(wanted.len()).position(|w| w == wanted.as_slice())?;
    let words = &answer[at..at + wanted.len()];
    Some(Quote {
        text: words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "),
        start_ms: words.first().and_then(|w| w.start_ms),
        end_ms: words.last().and_then(|w| w.end_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Analysis;
    use crate::answer::tests::question;
    use crate::answer::typed_words;
    use crate::bank::QuestionKind;

    fn answer() -> Analysis {
        Analysis::of(&question(QuestionKind::Experience), &typed_words("I added an index and the latency dropped by half."))
    }

    fn reply(rating: i64, evidence: &str, follow_up: Value) -> String {
        let r = json!({"reason": "Specific.", "evidence": evidence, "rating": rating});
        json!({"assessment": {"technical_depth": r, "communication": r, "structure": r, "impact": r}, "follow_up": follow_up}).to_string()
    }

    #[test]
    fn a_valid_reply_becomes_ratings_with_the_candidates_own_words() {
        let text = reply(4, "the latency dropped by half", json!({"needed": true, "question": "What did you measure before the change?"}));
        let judgement = parse_judgement(&text, &answer().words).unwrap();
        assert_eq!(judgement.ratings.len(), 4);
        assert_eq!(judgement.ratings[0].evidence.as_ref().unwrap().text, "the latency dropped by half.");
        assert_eq!(judgement.follow_up.as_deref(), Some("What did you measure before the change?"));
        let invented = parse_judgement(&reply(4, "I rebuilt the whole system", json!({"needed": false, "question": ""})), &answer().words).unwrap();
        assert!(invented.ratings[0].evidence.is_none(), "a quote the candidate never said is dropped");
    }

    #[test]
    fn replies_that_break_the_schema_are_refused() {
        let a = answer();
        assert!(matches!(parse_judgement("not json", &a.words), Err(ReplyError::Json(_))));
        assert!(matches!(parse_judgement(&reply(7, "", json!({"needed": false, "question": ""})), &a.words), Err(ReplyError::Schema(_))));
        assert!(matches!(parse_judgement(&reply(3, "", json!({"needed": true, "question": "Tell me more."})), &a.words), Err(ReplyError::Schema(_))));
        let missing = json!({"assessment": {"technical_depth": {"reason": "x", "evidence": "", "rating": 3}}, "follow_up": {"needed": false, "question": ""}});
        assert!(matches!(parse_judgement(&missing.to_string(), &a.words), Err(ReplyError::Schema(_))));
    }

    #[test]
    fn the_spoken_decision_is_found_as_soon_as_it_is_complete_in_a_stream() {
        let text = r#"{"follow_up": {"missing": "a \"result\" } and {", "needed": true, "question": "What changed afterwards?"}, "assessment": {"technical_depth": {"reason": "the follow_up: {x}", "evidence": "", "rating": 2}"#;
        let complete = text.find("?\"}").unwrap() + 3;
        for cut in 0..complete {
            assert!(decision_in(&text[..cut]).is_none(), "not complete at {cut}: {:?}", &text[..cut]);
        }
        for cut in complete..=text.len() {
            assert_eq!(decision_in(&text[..cut]), Some(Ok(Some("What changed afterwards?".to_string()))));
        }
        let none = r#"{"follow_up":{"missing":"","needed":false,"question":""},"assessment":{"#;
        assert_eq!(decision_in(none), Some(Ok(None)));
        let bad = r#"{"follow_up": {"missing": "", "needed": true, "question": "More."}"#;
        assert!(matches!(decision_in(bad), Some(Err(ReplyError::Schema(_)))));
        // A key of the same name deeper down, or in a string, is not the decision.
        assert!(decision_in(r#"{"assessment": {"follow_up": {"needed": false, "question": ""}}"#).is_none());
        assert!(decision_in(r#"{"note": "\"follow_up\": {}", "#).is_none());
    }

    #[test]
    fn prompts_carry_the_rubric_and_never_the_candidates_identity() {
        let redact = vec!["Ada".to_string(), "Lovelace".to_string(), "ada@example.com".to_string()];
        let thread = vec![("Tell me about a slow service.".to_string(), "Hi, I'm Ada Lovelace, ada@example.com. I added an index.".to_string())];
        let ctx = Context {
            role: "Backend engineer",
            level: "senior",
            job_description: Some("Build APIs in Rust."),
            history: &[],
            question: "Tell me about a slow service.",
            talking_points: &["the bottleneck".to_string()],
            thread: &thread,
            follow_ups_left: 2,
            redact: &redact,
        };
        let request = judge_request(1, &ctx);
        let all: String = request.messages.iter().map(|m| m.content.as_str()).collect();
        assert!(!all.contains("Ada") && !all.contains("Lovelace") && !all.contains("example.com"), "{all}");
        assert!(all.contains(rubric().anchor(Dimension::Impact, 5)) && all.contains("Build APIs in Rust."));
        assert!(all.contains("reason first"));
        assert_eq!(request.schema["properties"]["assessment"]["required"].as_array().unwrap().len(), 4);
    }
}
