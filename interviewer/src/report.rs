//! The report of an interview and its learning path, built from what the interview recorded (questions,
//! answers, ratings, the coverage ledger) and what the server measured (delivery, presence) and kept (earlier
//! interviews' scores). Content scores come from the ratings alone; delivery and presence are separate
//! sections that never move them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::bank::{bank, parse};
use crate::grade::{Dimension, Rating};
use crate::jd::{JobProfile, Ledger, skill};

/// One planned question as it went: its answer (all parts), follow-ups and ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AskedQuestion {
    pub id: String,
    pub bank_id: String,
    pub round: usize,
    pub text: String,
    pub competencies: Vec<String>,
    pub answer: String,
    pub follow_ups: Vec<FollowUp>,
    pub skipped: bool,
    /// Which brain produced the ratings: "built_in" or "llm".
    pub brain: String,
    pub ratings: Vec<Rating>,
    /// Words per minute of the spoken answer, when there was one.
    pub wpm: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub id: String,
    pub text: String,
    pub answer: String,
    /// What the answer lacked that the follow-up asked for.
    pub reason: String,
    pub brain: String,
}

impl AskedQuestion {
    /// 0-100: the mean of its ratings; `None` when skipped.
    pub fn score(&self) -> Option<u8> {
        (!self.skipped && !self.ratings.is_empty()).then(|| {
            let sum: u32 = self.ratings.iter().map(|r| u32::from(r.score())).sum();
            (sum / self.ratings.len() as u32) as u8
        })
    }
}

/// What the server measured of the candidate's delivery over the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliverySummary {
    pub wpm: Option<f32>,
    pub fillers_per_min: Option<f32>,
    pub longest_pauses_ms: Vec<u64>,
    pub speaking_share: Option<f32>,
    /// Each spoken answer's delivery, in the order given (empty in reports made before it was kept).
    #[serde(default)]
    pub timeline: Vec<DeliveryPoint>,
}

/// One spoken answer's delivery: when it started (ms into the session), its pace, fillers and long pauses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryPoint {
    pub t_ms: u64,
    pub wpm: Option<f32>,
    pub fillers_per_min: f32,
    /// Pauses inside the answer long enough to count (see the speech pipeline's delivery metrics).
    pub long_pauses: u32,
}

/// What the camera showed, when vision ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceSummary {
    /// Share of analysed seconds with a face in view, 0 to 1.
    pub face_visible: f32,
    /// Share of seconds with a face spent looking at the camera, 0 to 1.
    pub eye_contact: f32,
    /// The most frequent expression.
    pub expression: Option<String>,
    /// The same shares over the session, in equal spans of time (empty in reports made before it was kept).
    #[serde(default)]
    pub timeline: Vec<PresencePoint>,
}

/// Presence over one span of the session, starting `t_ms` into it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PresencePoint {
    pub t_ms: u64,
    pub face_visible: f32,
    /// `None` when no face was in view in the span.
    pub eye_contact: Option<f32>,
}

/// An earlier interview's scores, for progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastScores {
    pub interview_id: String,
    pub ended_at: i64,
    pub overall: u8,
    pub dimensions: BTreeMap<String, u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    pub dimension: Dimension,
    pub name: String,
    pub score: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundScore {
    pub kind: String,
    pub title: String,
    pub score: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageItem {
    pub id: String,
    pub name: String,
    /// Answers that showed it.
    pub evidence: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub competencies: Vec<CoverageItem>,
    /// Skills of the job description, when one was given.
    pub job_skills: Vec<CoverageItem>,
    pub job_duties: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub competency: String,
    pub title: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub description: String,
    pub step: String,
}

#[derive(Deserialize)]
struct ResourceFile {
    resource: Vec<Resource>,
}

pub fn resources() -> &'static [Resource] {
    static RESOURCES: OnceLock<Vec<Resource>> = OnceLock::new();
    RESOURCES.get_or_init(|| parse::<ResourceFile>("resources.toml", include_str!("../data/resources.toml")).resource)
}

/// One step of the learning path: a competency to work on, why, and what to read and do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub competency: String,
    pub name: String,
    pub why: String,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub previous_interviews: usize,
    pub previous_overall: u8,
    /// Change of the overall score since the last interview, in points.
    pub change: i16,
    pub dimensions: BTreeMap<String, i16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// 0-100, the mean of the answered questions' content scores.
    pub overall: u8,
    /// False when the interview ended before its planned questions were asked.
    pub complete: bool,
    pub dimensions: Vec<DimensionScore>,
    pub rounds: Vec<RoundScore>,
    pub questions: Vec<AskedQuestion>,
    pub coverage: Coverage,
    pub delivery: DeliverySummary,
    pub presence: Option<PresenceSummary>,
    pub strengths: Vec<String>,
    pub improvements: Vec<String>,
    pub learning_path: Vec<Step>,
    pub progress: Option<Progress>,
    pub summary: String,
}

impl Report {
    pub fn dimension(&self, dimension: Dimension) -> u8 {
        self.dimensions.iter().find(|d| d.dimension == dimension).map_or(0, |d| d.score)
    }
}

/// The interview as the state machine recorded it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub rounds: Vec<(String, String)>,
    pub questions: Vec<AskedQuestion>,
    pub ledger: Ledger,
    pub job: Option<JobProfile>,
    pub planned: usize,
}

fn mean(values: impl Iterator<Item = u8>) -> Option<u8> {
    let values: Vec<u32> = values.map(u32::from).collect();
    (!values.is_empty()).then(|| (values.iter().sum::<u32>() / values.len() as u32) as u8)
}

pub fn build(record: &Record, delivery: DeliverySummary, presence: Option<PresenceSummary>, history: &[PastScores]) -> Report {
    let answered: Vec<&AskedQuestion> = record.questions.iter().filter(|q| q.score().is_some()).collect();
    let dimensions: Vec<DimensionScore> = Dimension::ALL
        .into_iter()
        .map(|d| DimensionScore {
            dimension: d,
            name: d.name().to_string(),
            score: mean(answered.iter().flat_map(|q| q.ratings.iter().filter(move |r| r.dimension == d).map(Rating::score)))
                .unwrap_or(0),
        })
        .collect();
    let overall = mean(answered.iter().filter_map(|q| q.score())).unwrap_or(0);
    let rounds = record
        .rounds
        .iter()
        .enumerate()
        .map(|(i, (kind, title))| RoundScore {
            kind: kind.clone(),
            title: title.clone(),
            score: mean(record.questions.iter().filter(|q| q.round == i).filter_map(AskedQuestion::score)),
        })
        .collect();
    let coverage = coverage(record);
    let (strengths, improvements) = strengths_and_improvements(&dimensions, &answered);
    let learning_path = learning_path(record, &answered);
    let progress = history.first().map(|last| Progress {
        previous_interviews: history.len(),
        previous_overall: last.overall,
        change: i16::from(overall) - i16::from(last.overall),
        dimensions: dimensions
            .iter()
            .filter_map(|d| {
                let before = last.dimensions.get(d.dimension.as_str())?;
                Some((d.dimension.as_str().to_string(), i16::from(d.score) - i16::from(*before)))
            })
            .collect(),
    });
    let complete = record.questions.len() >= record.planned;
    let summary = summary(overall, &answered, complete, &dimensions);
    Report {
        overall,
        complete,
        dimensions,
        rounds,
        questions: record.questions.clone(),
        coverage,
        delivery,
        presence,
        strengths,
        improvements,
        learning_path,
        progress,
        summary,
    }
}

fn coverage(record: &Record) -> Coverage {
    let bank = bank();
    let competencies = record
        .ledger
        .competencies
        .iter()
        .map(|(id, n)| CoverageItem {
            id: id.clone(),
            name: bank.competency(id).map_or_else(|| id.clone(), |c| c.name.clone()),
            evidence: *n,
        })
        .collect();
    let job_skills = record
        .job
        .iter()
        .flat_map(|job| &job.skills)
        .map(|id| CoverageItem {
            id: id.clone(),
            name: skill(id).map_or_else(|| id.clone(), |s| s.name.clone()),
            evidence: record.ledger.skills.get(id).copied().unwrap_or(0),
        })
        .collect();
    Coverage { competencies, job_skills, job_duties: record.job.as_ref().map(|j| j.duties.clone()).unwrap_or_default() }
}

fn strengths_and_improvements(dimensions: &[DimensionScore], answered: &[&AskedQuestion]) -> (Vec<String>, Vec<String>) {
    if answered.is_empty() {
        return (Vec::new(), vec!["Answer at least one question to get feedback on your answers.".to_string()]);
    }
    let mut sorted: Vec<&DimensionScore> = dimensions.iter().collect();
    sorted.sort_by_key(|d| std::cmp::Reverse(d.score));
    let strengths = sorted
        .iter()
        .filter(|d| d.score >= 60)
        .take(2)
        .map(|d| format!("{}: {}", d.name, best_reason(answered, d.dimension)))
        .collect();
    let improvements = sorted
        .iter()
        .rev()
        .filter(|d| d.score < 75)
        .take(2)
        .map(|d| format!("{}: {}", d.name, advice(d.dimension)))
        .collect();
    (strengths, improvements)
}

/// The reason of the best rating on a dimension.
fn best_reason(answered: &[&AskedQuestion], dimension: Dimension) -> String {
    answered
        .iter()
        .flat_map(|q| q.ratings.iter().filter(|r| r.dimension == dimension))
        .max_by_key(|r| r.rating)
        .map_or_else(String::new, |r| r.reason.clone())
}

fn advice(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::TechnicalDepth => "name the specific techniques, tools and trade-offs behind your choices, and say why.",
        Dimension::Communication => "lead with the answer in one sentence, then support it; aim for one to two minutes.",
        Dimension::Structure => "tell past situations as situation, task, your actions, and the result.",
        Dimension::Impact => "say what you did yourself (\"I\", not only \"we\") and what changed, with a number if you can.",
    }
}

/// Steps for the weakest competencies: those probed by the lowest-scoring answers, then job competencies never
/// evidenced.
fn learning_path(record: &Record, answered: &[&AskedQuestion]) -> Vec<Step> {
    let bank = bank();
    let mut by_competency: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for q in answered {
        for c in &q.competencies {
            by_competency.entry(c).or_default().push(q.score().unwrap_or(0));
        }
    }
    let mut weak: Vec<(String, String)> = by_competency
        .iter()
        .map(|(c, scores)| (*c, mean(scores.iter().copied()).unwrap_or(0)))
        .filter(|(_, score)| *score < 70)
        .map(|(c, score)| (c.to_string(), format!("Your answers probing this scored {score} of 100.")))
        .collect();
    weak.sort_by_key(|(c, _)| by_competency.get(c.as_str()).and_then(|s| mean(s.iter().copied())).unwrap_or(0));
    if let Some(job) = &record.job {
        for c in &job.competencies {
            if record.ledger.competencies.get(c).copied().unwrap_or(0) == 0 && !weak.iter().any(|(w, _)| w == c) {
                weak.push((c.clone(), "The job asks for it and the interview found no evidence of it yet.".to_string()));
            }
        }
    }
    weak.into_iter()
        .take(4)
        .map(|(c, why)| Step {
            name: bank.competency(&c).map_or_else(|| c.clone(), |x| x.name.clone()),
            resources: resources().iter().filter(|r| r.competency == c).take(3).cloned().collect(),
            competency: c,
            why,
        })
        .collect()
}

fn summary(overall: u8, answered: &[&AskedQuestion], complete: bool, dimensions: &[DimensionScore]) -> String {
    if answered.is_empty() {
        return "No question was answered, so there is nothing to score yet.".to_string();
    }
    let best = dimensions.iter().max_by_key(|d| d.score).map(|d| d.name.to_lowercase()).unwrap_or_default();
    let worst = dimensions.iter().min_by_key(|d| d.score).map(|d| d.name.to_lowercase()).unwrap_or_default();
    let ended = if complete { "" } else { " The interview ended early, so this covers only what was answered." };
    format!(
        "{} answered question{}, overall {overall} of 100. Strongest on {best}; most room to grow on {worst}.{ended}",
        answered.len(),
        if answered.len() == 1 { "" } else { "s" }
    )
}

/// Scores per dimension of a report, as earlier-interview history is kept.
pub fn past_scores(interview_id: &str, ended_at: i64, report: &Report) -> PastScores {
    PastScores {
        interview_id: interview_id.to_string(),
        ended_at,
        overall: report.overall,
        dimensions: report.dimensions.iter().map(|d| (d.dimension.as_str().to_string(), d.score)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_competency_has_resources_with_original_steps() {
        for c in &bank().competencies {
            let count = resources().iter().filter(|r| r.competency == c.id).count();
            assert!(count >= 2, "{}: {count} resources", c.id);
        }
        for r in resources() {
            assert!(bank().competency(&r.competency).is_some(), "{}", r.title);
            assert!(!r.step.is_empty() && !r.description.is_empty(), "{}", r.title);
            assert!(r.url.as_deref().is_none_or(|u| u.starts_with("https://")), "{}", r.title);
        }
    }
}
