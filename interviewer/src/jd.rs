//! The job description: the skills and duties it asks for, and a coverage ledger of what the candidate has
//! shown evidence for. Skills come from a lexicon (`data/skills.toml`: terms and their aliases, each tied to
//! competencies); duties are the description's bullet lines that start with a verb. The ledger counts, per
//! competency and per job term, the answers that showed it; the next question aims at the least covered one.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::answer::Analysis;
use crate::bank::parse;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skill {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub competencies: Vec<String>,
}

#[derive(Deserialize)]
struct SkillFile {
    skill: Vec<Skill>,
}

pub fn skills() -> &'static [Skill] {
    static SKILLS: OnceLock<Vec<Skill>> = OnceLock::new();
    SKILLS.get_or_init(|| parse::<SkillFile>("skills.toml", include_str!("../data/skills.toml")).skill)
}

/// What a job description asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProfile {
    /// Skill ids found, in order of first mention.
    pub skills: Vec<String>,
    /// Duty lines (short, verb-first bullet points).
    pub duties: Vec<String>,
    /// Competencies the skills point at, most mentioned first.
    pub competencies: Vec<String>,
}

const DUTY_VERBS: &[&str] = &[
    "build", "design", "develop", "own", "lead", "maintain", "write", "work", "collaborate", "partner", "drive",
    "define", "create", "improve", "ship", "deliver", "manage", "mentor", "run", "operate", "analyze", "analyse",
    "research", "support", "scale", "implement", "architect", "hire", "grow", "sell", "present", "monitor",
];

/// Text with spaces around each lower-case word, punctuation turned to spaces (keeping + # . inside words such as
/// "c++", "c#", "node.js"), for whole-word matching.
fn spaced(text: &str) -> String {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || "+#.-/'".contains(c) { c } else { ' ' })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().map(|w| w.trim_end_matches(['.', '-', '/'])).collect();
    format!(" {} ", words.join(" "))
}

/// Finds skills and duties in a job description.
pub fn profile(description: &str) -> JobProfile {
    let text = spaced(description);
    let mut found: Vec<(usize, &Skill)> = skills()
        .iter()
        .filter_map(|skill| {
            skill.aliases.iter().filter_map(|alias| text.find(&format!(" {alias} "))).min().map(|at| (at, skill))
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    let mut mentions: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, skill) in &found {
        for c in &skill.competencies {
            *mentions.entry(c).or_default() += 1;
        }
    }
    let mut competencies: Vec<(&str, usize)> = mentions.into_iter().collect();
    competencies.sort_by_key(|c| std::cmp::Reverse(c.1));
    let duties = description
        .lines()
        .map(|l| l.trim().trim_start_matches(['-', '*', '•', '·']).trim())
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or_default().to_lowercase();
            (12..200).contains(&l.len()) && DUTY_VERBS.iter().any(|v| first.starts_with(v))
        })
        .map(str::to_string)
        .take(12)
        .collect();
    JobProfile {
        skills: found.into_iter().map(|(_, s)| s.id.clone()).collect(),
        duties,
        competencies: competencies.into_iter().map(|(c, _)| c.to_string()).collect(),
    }
}

pub fn skill(id: &str) -> Option<&'static Skill> {
    skills().iter().find(|s| s.id == id)
}

/// What the candidate has shown evidence for, as they answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Per competency: answers that showed it (an answer on topic to a question probing it, covering at least
    /// some of its talking points).
    pub competencies: BTreeMap<String, u32>,
    /// Per job skill id: answers that mentioned it.
    pub skills: BTreeMap<String, u32>,
}

impl Ledger {
    /// A ledger with every competency and job skill the interview targets at zero.
    pub fn new(targets: &[String], job: &JobProfile) -> Self {
        Self {
            competencies: targets.iter().chain(&job.competencies).map(|c| (c.clone(), 0)).collect(),
            skills: job.skills.iter().map(|s| (s.clone(), 0)).collect(),
        }
    }

    /// Counts the evidence an answer gives.
    pub fn record(&mut self, competencies: &[String], answer: &Analysis) {
        if answer.on_topic && (!answer.points_hit.is_empty() || !answer.keywords_hit.is_empty()) {
            for c in competencies {
                *self.competencies.entry(c.clone()).or_default() += 1;
            }
        }
        for (id, count) in &mut self.skills {
            if skill(id).is_some_and(|s| s.aliases.iter().any(|a| answer.mentions(a))) {
                *count += 1;
            }
        }
    }

    /// How well covered a question's competencies are: lower is less covered (aim there next).
    pub fn coverage_of(&self, competencies: &[String]) -> u32 {
        competencies.iter().map(|c| self.competencies.get(c).copied().unwrap_or(0)).sum()
    }

    /// Job skills not evidenced yet, in the description's order.
    pub fn uncovered_skills<'a>(&'a self, job: &'a JobProfile) -> impl Iterator<Item = &'a str> {
        job.skills.iter().filter(|s| self.skills.get(*s).copied().unwrap_or(0) == 0).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JD: &str = "Senior Backend Engineer\n\nYou will:\n- Design and build APIs in Rust and Python\n\
        - Own our PostgreSQL and Redis data layer\n- Mentor two junior engineers\n- Run services on Kubernetes\n\n\
        We value clear communication and experience with incident response.";

    #[test]
    fn skills_and_duties_are_found_in_a_job_description() {
        let job = profile(JD);
        for wanted in ["postgresql", "redis", "kubernetes", "python"] {
            assert!(job.skills.iter().any(|s| s == wanted), "{wanted} in {:?}", job.skills);
        }
        assert!(job.duties.iter().any(|d| d.starts_with("Design and build APIs")), "{:?}", job.duties);
        assert!(job.duties.iter().any(|d| d.starts_with("Mentor")), "{:?}", job.duties);
        assert!(job.competencies.contains(&"data_modeling".to_string()), "{:?}", job.competencies);
    }

    #[test]
    fn every_skill_names_known_competencies_and_aliases_do_not_clash() {
        let bank = crate::bank::bank();
        let mut seen = std::collections::HashMap::new();
        for skill in skills() {
            assert!(!skill.aliases.is_empty(), "{}", skill.id);
            for c in &skill.competencies {
                assert!(bank.competency(c).is_some(), "{}: unknown competency {c}", skill.id);
            }
            for alias in &skill.aliases {
                assert_eq!(alias, &alias.to_lowercase(), "{}", skill.id);
                if let Some(other) = seen.insert(alias.clone(), skill.id.clone()) {
                    panic!("{alias} belongs to {other} and {}", skill.id);
                }
            }
        }
    }

    #[test]
    fn ordinary_prose_finds_no_skills_by_accident() {
        let job = profile("We are a friendly team. You will go to meetings, swift decisions matter, and we are in it for the long run.");
        assert!(job.skills.is_empty(), "{:?}", job.skills);
    }
}
