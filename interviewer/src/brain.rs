//! Asking a brain (a language model behind an OpenAI-compatible endpoint) and checking what it says. The state
//! machine asks for a judgement of an answer; the server's client carries the request and hands back the text.
//! Everything here is pure: the prompt (role, level, job description, rubric anchors, the conversation; never
//! the candidate's identity), the JSON schema of the reply, and its validation. A reply that fails validation is
//! a failed call: the built-in brain decides instead.

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
         a rating. For each dimension give the reason first, then a short quote of the candidate's own words as \
         evidence (copied exactly, or empty if there is none), then the rating. Then decide whether one follow-up \
         question is needed: only when the answer lacks a concrete example, the candidate's own actions, a \
         result, context, depth, or did not address the question; never after a strong answer. A follow-up is one \
         short spoken question.\n\n{scales}",
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

/// The reply's JSON schema: reasons before ratings, as the prompt asks.
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
            "assessment": {
                "type": "object",
                "properties": dimensions,
                "required": Dimension::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                "additionalProperties": false
            },
            "follow_up": {
                "type": "object",
                "properties": {"needed": {"type": "boolean"}, "question": {"type": "string"}},
                "required": ["needed", "question"],
                "additionalProperties": false
            }
        },
        "required": ["assessment", "follow_up"],
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
    let follow_up = if raw.follow_up.needed {
        let q = raw.follow_up.question.trim();
        let words = q.split_whitespace().count();
        if !(3..=45).contains(&words) || !q.ends_with('?') {
            return Err(ReplyError::Schema(format!("the follow-up is not one short question: {q:?}")));
        }
        Some(q.to_string())
    } else {
        None
    };
    Ok(Judgement { ratings, follow_up })
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
