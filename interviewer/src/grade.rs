//! Grading: each answer rated on anchored 1-5 scales per dimension (`data/rubric.toml`), each rating with the
//! anchor it meets, a one-line reason and a quote from the answer as evidence. Ratings map to 0-100 for the API.
//! Only what was said counts: delivery (pace, fillers, pauses) and presence (camera) are reported apart and never
//! enter these ratings.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::answer::{Analysis, Quote, action_score, result_score};
use crate::bank::{Question, QuestionKind, parse};

/// The content dimensions, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    TechnicalDepth,
    Communication,
    Structure,
    Impact,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [Self::TechnicalDepth, Self::Communication, Self::Structure, Self::Impact];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TechnicalDepth => "technical_depth",
            Self::Communication => "communication",
            Self::Structure => "structure",
            Self::Impact => "impact",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub fn name(self) -> &'static str {
        &rubric().dimension(self).name
    }
}

/// A rating on one dimension with what backs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub dimension: Dimension,
    /// 1 to 5.
    pub rating: u8,
    /// The anchor text of that rating.
    pub anchor: String,
    /// One line: why this rating.
    pub reason: String,
    pub evidence: Option<Quote>,
}

impl Rating {
    /// 0-100, as the API reports scores.
    pub fn score(&self) -> u8 {
        to_score(self.rating)
    }
}

pub fn to_score(rating: u8) -> u8 {
    (rating.clamp(1, 5) - 1) * 25
}

#[derive(Debug, Deserialize)]
pub struct DimensionScale {
    pub id: String,
    pub name: String,
    /// Anchors for ratings 1 to 5.
    pub anchors: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct GenericProbes {
    pub too_short: String,
    pub example: String,
    pub own_action: String,
    pub result: String,
    pub structure: String,
    pub depth: String,
    pub off_topic: String,
    /// With `{term}` for a job-description term.
    pub jd: String,
}

#[derive(Debug, Deserialize)]
pub struct Rubric {
    pub dimension: Vec<DimensionScale>,
    pub generic_probes: GenericProbes,
}

impl Rubric {
    pub fn dimension(&self, dimension: Dimension) -> &DimensionScale {
        self.dimension.iter().find(|d| d.id == dimension.as_str()).expect("the rubric has every dimension")
    }

    pub fn anchor(&self, dimension: Dimension, rating: u8) -> &str {
        &self.dimension(dimension).anchors[usize::from(rating.clamp(1, 5) - 1)]
    }
}

pub fn rubric() -> &'static Rubric {
    static RUBRIC: OnceLock<Rubric> = OnceLock::new();
    RUBRIC.get_or_init(|| parse("rubric.toml", include_str!("../data/rubric.toml")))
}

fn rating(dimension: Dimension, value: u8, reason: String, evidence: Option<Quote>) -> Rating {
    let value = value.clamp(1, 5);
    Rating { dimension, rating: value, anchor: rubric().anchor(dimension, value).to_string(), reason, evidence }
}

/// Rates an answer (all its parts, follow-ups included) to a question of `kind`.
pub fn grade(question: &Question, a: &Analysis) -> Vec<Rating> {
    let kind = question.kind;
    let words = a.word_count();
    if words < 3 {
        return Dimension::ALL
            .into_iter()
            .map(|d| rating(d, 1, "No answer was given.".into(), None))
            .collect();
    }
    vec![depth(question, a), communication(a), structure(kind, a), impact(kind, a)]
}

fn depth(question: &Question, a: &Analysis) -> Rating {
    let (coverage, keywords) = (a.coverage(), a.keyword_share(question.keywords.len()));
    let (evidence, both) = (coverage.max(keywords), coverage.min(keywords));
    let long = a.word_count() >= 60;
    let value = if !a.on_topic {
        1
    } else {
        2 + u8::from(evidence >= 0.3) + u8::from(evidence >= 0.5) + u8::from(long && (evidence >= 0.75 || both >= 0.5))
    };
    let terms = a.keywords_hit.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    let reason = match (a.points_hit.len(), terms.is_empty()) {
        (_, _) if !a.on_topic => "The answer does not address what was asked.".to_string(),
        (0, true) => "Stays general: none of the points a strong answer covers, no specific terms.".to_string(),
        (hit, true) => format!("Covers {hit} of {} key points, in general terms.", a.points),
        (hit, false) => format!("Covers {hit} of {} key points, with specifics ({terms}).", a.points),
    };
    rating(Dimension::TechnicalDepth, value, reason, a.quote_where(a.keyword_score()))
}

fn communication(a: &Analysis) -> Rating {
    let words = a.word_count();
    let sensible_length = (40..=400).contains(&words);
    let value = if !a.on_topic {
        1 + u8::from(words >= 15)
    } else {
        2 + u8::from(words >= 25) + u8::from(sensible_length) + u8::from(sensible_length && a.signposts >= 2)
    };
    let reason = if !a.on_topic {
        "Hard to connect to the question asked.".to_string()
    } else if words < 25 {
        format!("Answers the question but briefly ({words} words).")
    } else if words > 400 {
        format!("Answers the question at great length ({words} words); the main point gets lost.")
    } else if a.signposts >= 2 {
        "Answers directly, at a sensible length, and signposts the reasoning.".to_string()
    } else {
        "Answers the question at a sensible length; more signposting would make it easier to follow.".to_string()
    };
    // The opening sentence shows whether the answer gets to the point.
    rating(Dimension::Communication, value, reason, a.quote_where(|_| 0))
}

fn structure(kind: QuestionKind, a: &Analysis) -> Rating {
    let (value, reason) = if kind == QuestionKind::Experience {
        let parts = a.star_parts();
        let missing: Vec<&str> = [
            (a.situation || a.example, "situation"),
            (a.task, "task"),
            (a.own_actions > 0, "your actions"),
            (a.result, "result"),
        ]
        .iter()
        .filter(|(present, _)| !present)
        .map(|(_, part)| *part)
        .collect();
        let value = match parts {
            0 => 1,
            1 => 2,
            2 | 3 => 3,
            _ => 4 + u8::from(a.word_count() >= 80),
        };
        let reason = if missing.is_empty() {
            "Tells the whole story: situation, task, actions and result.".to_string()
        } else {
            format!("Missing from the story: {}.", missing.join(", "))
        };
        (value, reason)
    } else {
        let reasoned = a.signposts >= 1;
        let value = 1 + u8::from(a.on_topic) + u8::from(reasoned) + u8::from(a.signposts >= 2) + u8::from(a.word_count() >= 60 && a.signposts >= 3);
        let reason = if reasoned {
            "States a position and supports it with reasons in order.".to_string()
        } else {
            "States a position without showing the reasoning step by step.".to_string()
        };
        (value, reason)
    };
    rating(Dimension::Structure, value, reason, a.quote_where(action_score))
}

fn impact(kind: QuestionKind, a: &Analysis) -> Rating {
    let own = a.own_actions > 0;
    let (value, reason) = match (own, a.result, a.numbers > 0) {
        (true, true, true) => (5, "Shows the candidate's own actions and a measured outcome.".to_string()),
        (true, true, false) => (4, "Shows the candidate's own actions and an outcome, without measures.".to_string()),
        (true, false, _) => (3, "Shows the candidate's own actions but not what came of them.".to_string()),
        (false, true, _) if a.we > 0 => (2, "Describes an outcome, but the candidate's own part is unclear (\"we\").".to_string()),
        (false, true, _) => (3, "Describes an outcome without the candidate's own part.".to_string()),
        (false, false, _) if kind == QuestionKind::Experience => (1, "No outcome or contribution is described.".to_string()),
        (false, false, _) => (2, "Explains an approach without its consequences or results.".to_string()),
    };
    rating(Dimension::Impact, value, reason, a.quote_where(result_score))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::typed_words;
    use crate::answer::tests::question;

    fn total(kind: QuestionKind, text: &str) -> u32 {
        let q = question(kind);
        grade(&q, &Analysis::of(&q, &typed_words(text))).iter().map(|r| u32::from(r.rating)).sum()
    }

    #[test]
    fn clearly_better_answers_get_higher_ratings() {
        let kind = QuestionKind::Experience;
        let vague = "We made it faster I think.";
        let middling = "We had a slow service at my last job. We looked at it and added some caching, and after that \
            it was faster and people were happier with it, so that was good for the whole team overall.";
        let strong = "At my last company our checkout service was slow and my task was to bring the p99 latency under \
            200 milliseconds before the holiday sale. First I profiled the service and found that one query scanned \
            the whole orders table, so I added an index, and then I put a cache in front of the product lookups \
            because those reads repeated constantly. As a result the p99 latency dropped from 900 to 150 \
            milliseconds and the sale went through without incidents.";
        let (v, m, s) = (total(kind, vague), total(kind, middling), total(kind, strong));
        assert!(v < m && m < s, "vague {v}, middling {m}, strong {s}");
        let q = question(kind);
        for r in grade(&q, &Analysis::of(&q, &typed_words(strong))) {
            assert!(r.rating >= 4, "{r:?}");
            assert!(!r.reason.is_empty() && r.evidence.is_some(), "{r:?}");
            assert_eq!(r.anchor, rubric().anchor(r.dimension, r.rating));
        }
    }

    #[test]
    fn fillers_and_hesitation_never_lower_a_rating() {
        let kind = QuestionKind::Experience;
        let clean = "At my last company the service was slow, so I profiled it and added an index, and the latency \
            dropped by half within a week.";
        let disfluent = "Um, at my last company, uh, the service was slow, so, um, I profiled it and, uh, added an \
            index, and, you know, the latency dropped by half within a week.";
        assert_eq!(total(kind, clean), total(kind, disfluent));
    }

    #[test]
    fn ratings_map_to_scores_from_zero_to_one_hundred() {
        assert_eq!((to_score(1), to_score(3), to_score(5)), (0, 50, 100));
    }
}
