//! The question bank and the competencies it probes: data files embedded at build time (`data/`), parsed once.
//! The files are checked by this crate's tests (ids unique, competencies known, enough questions per track,
//! stage and level), so a parse failure at run time is a bug, and panics with the file's name.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::plan::{Level, Track};

/// Which part of an interview a question belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Behavioral,
    Technical,
    Hr,
}

/// What a question asks for, which decides how its answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// "Tell me about a time": a past situation, judged on STAR.
    Experience,
    /// Explain or reason about something.
    Knowledge,
    /// "What would you do".
    Scenario,
    /// About the candidate themselves: goals, reasons, preferences.
    Motivation,
}

/// The prepared follow-ups of a question, each asked only when the answer lacks what it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probes {
    pub example: Option<String>,
    pub own_action: Option<String>,
    pub result: Option<String>,
    pub depth: Option<String>,
    pub structure: Option<String>,
    pub off_topic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub stage: Stage,
    /// The round kind it fits (behavioral, hr, technical, coding, system_design, case, portfolio, leadership).
    pub round: String,
    pub levels: Vec<Level>,
    pub kind: QuestionKind,
    pub text: String,
    /// Competency ids, most important first.
    pub competencies: Vec<String>,
    pub talking_points: Vec<String>,
    /// Lower-case words or phrases whose presence is evidence of the talking points.
    pub keywords: Vec<String>,
    #[serde(default)]
    pub probes: Probes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompetencyKind {
    Technical,
    Professional,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competency {
    pub id: String,
    pub name: String,
    pub kind: CompetencyKind,
    pub description: String,
}

/// Where a question file's questions are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Behavioral and HR questions: every role.
    Shared,
    Track(Track),
}

/// The bank's files, embedded: (source, file name, contents).
const FILES: &[(Source, &str, &str)] = &[
    (Source::Shared, "behavioral", include_str!("../data/questions/behavioral.toml")),
    (Source::Shared, "hr", include_str!("../data/questions/hr.toml")),
    (Source::Track(Track::Backend), "backend", include_str!("../data/questions/backend.toml")),
    (Source::Track(Track::Frontend), "frontend", include_str!("../data/questions/frontend.toml")),
    (Source::Track(Track::Fullstack), "fullstack", include_str!("../data/questions/fullstack.toml")),
    (Source::Track(Track::Mobile), "mobile", include_str!("../data/questions/mobile.toml")),
    (Source::Track(Track::DevopsSre), "devops_sre", include_str!("../data/questions/devops_sre.toml")),
    (Source::Track(Track::Security), "security", include_str!("../data/questions/security.toml")),
    (Source::Track(Track::DataScientist), "data_scientist", include_str!("../data/questions/data_scientist.toml")),
    (Source::Track(Track::DataEngineer), "data_engineer", include_str!("../data/questions/data_engineer.toml")),
    (Source::Track(Track::MlEngineer), "ml_engineer", include_str!("../data/questions/ml_engineer.toml")),
    (
        Source::Track(Track::EngineeringManager),
        "engineering_manager",
        include_str!("../data/questions/engineering_manager.toml"),
    ),
    (Source::Track(Track::ProductManager), "product_manager", include_str!("../data/questions/product_manager.toml")),
    (Source::Track(Track::Designer), "designer", include_str!("../data/questions/designer.toml")),
    (Source::Track(Track::Sales), "sales", include_str!("../data/questions/sales.toml")),
];

const COMPETENCIES: &str = include_str!("../data/competencies.toml");

pub struct Bank {
    /// Every question with where it is used.
    pub questions: Vec<(Source, Question)>,
    pub competencies: Vec<Competency>,
}

#[derive(Deserialize)]
struct QuestionFile {
    question: Vec<Question>,
}

#[derive(Deserialize)]
struct CompetencyFile {
    competency: Vec<Competency>,
}

/// Parses an embedded data file; a bad one is a bug caught by the tests.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> T {
    toml::from_str(text).unwrap_or_else(|e| panic!("embedded data file {name} is invalid: {e}"))
}

/// The bank, parsed on first use.
pub fn bank() -> &'static Bank {
    static BANK: OnceLock<Bank> = OnceLock::new();
    BANK.get_or_init(|| Bank {
        questions: FILES
            .iter()
            .flat_map(|(source, name, text)| {
                parse::<QuestionFile>(name, text).question.into_iter().map(move |q| (*source, q))
            })
            .collect(),
        competencies: parse::<CompetencyFile>("competencies.toml", COMPETENCIES).competency,
    })
}

impl Bank {
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().map(|(_, q)| q).find(|q| q.id == id)
    }

    pub fn competency(&self, id: &str) -> Option<&Competency> {
        self.competencies.iter().find(|c| c.id == id)
    }

    /// The questions a round of `round_kind` may ask a candidate of `track` at `level`, in bank order: shared
    /// behavioral or HR questions for those rounds, else the track's questions of that round kind (or, when
    /// the track has none of that kind, all its technical questions).
    pub fn for_round(&self, round_kind: &str, track: Track, level: Level) -> Vec<&Question> {
        let at_level = |q: &&Question| q.levels.contains(&level);
        let shared_stage = match round_kind {
            "behavioral" => Some(Stage::Behavioral),
            "hr" => Some(Stage::Hr),
            _ => None,
        };
        if let Some(stage) = shared_stage {
            return self
                .questions
                .iter()
                .filter(|(source, q)| *source == Source::Shared && q.stage == stage)
                .map(|(_, q)| q)
                .filter(at_level)
                .collect();
        }
        let of_track: Vec<&Question> =
            self.questions.iter().filter(|(source, _)| *source == Source::Track(track)).map(|(_, q)| q).collect();
        let of_kind: Vec<&Question> = of_track.iter().copied().filter(|q| q.round == round_kind).filter(at_level).collect();
        if of_kind.is_empty() { of_track.into_iter().filter(at_level).collect() } else { of_kind }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const LEVELS: [Level; 5] = [Level::Intern, Level::Junior, Level::Mid, Level::Senior, Level::Staff];

    #[test]
    fn every_question_is_well_formed_and_names_known_competencies() {
        let bank = bank();
        let mut ids = HashSet::new();
        for (_, q) in &bank.questions {
            assert!(ids.insert(q.id.as_str()), "{} appears twice", q.id);
            assert!(!q.levels.is_empty() && !q.text.trim().is_empty(), "{}", q.id);
            assert!(!q.competencies.is_empty() && !q.talking_points.is_empty() && q.keywords.len() >= 4, "{}", q.id);
            for c in &q.competencies {
                assert!(bank.competency(c).is_some(), "{}: unknown competency {c}", q.id);
            }
            assert!(q.probes.depth.is_some(), "{}: every question has a depth probe", q.id);
            if q.kind == QuestionKind::Experience {
                let p = &q.probes;
                assert!(p.example.is_some() && p.own_action.is_some() && p.result.is_some(), "{}: STAR probes", q.id);
            }
            assert!(q.keywords.iter().all(|k| k == &k.to_lowercase()), "{}: keywords are lower case", q.id);
            assert!(!q.text.contains('(') && !q.text.contains("e.g."), "{}: spoken text", q.id);
        }
    }

    #[test]
    fn every_track_and_stage_has_at_least_twelve_questions_at_every_level() {
        let bank = bank();
        for level in LEVELS {
            for stage in ["behavioral", "hr"] {
                let count = bank.for_round(stage, Track::Backend, level).len();
                assert!(count >= 12, "{stage} at {level:?}: {count}");
            }
            for track in Track::ALL {
                let count = bank
                    .questions
                    .iter()
                    .filter(|(s, q)| *s == Source::Track(track) && q.levels.contains(&level))
                    .count();
                assert!(count >= 8, "{track:?} technical at {level:?}: {count}");
                let all = bank.questions.iter().filter(|(s, _)| *s == Source::Track(track)).count();
                assert!(all >= 12, "{track:?}: {all}");
            }
        }
    }

    #[test]
    fn every_round_of_every_plan_has_questions() {
        use crate::plan::{InterviewKind, suggest_rounds};
        let roles = ["Backend engineer", "Data engineer", "Product manager", "Designer", "Engineering manager", "Account executive", "Chef"];
        for role in roles {
            for level in LEVELS {
                for round in suggest_rounds(role, InterviewKind::Mixed, level).into_iter().chain(suggest_rounds(role, InterviewKind::Technical, level)) {
                    let track = crate::plan::track(role);
                    assert!(bank().for_round(round.kind, track, level).len() >= 3, "{role} {level:?} {}", round.kind);
                }
            }
        }
    }
}
