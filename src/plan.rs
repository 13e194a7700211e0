//! Round plans: which rounds an interview has, from the job role, the interview type and the level. The role is
//! free text, so it is first sorted into a family by keywords; each family has its own technical rounds.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{ExperienceLevel, InterviewType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleFamily {
    Software,
    Data,
    Product,
    Design,
    Management,
    Commercial,
    General,
}

/// One suggested round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoundSuggestion {
    /// behavioral, coding, system_design, technical, case, portfolio, leadership or hr.
    pub kind: &'static str,
    pub title: &'static str,
    /// What the round probes.
    pub focus: &'static str,
    /// Typical length in a real interview loop.
    pub minutes: u32,
}

const fn round(kind: &'static str, title: &'static str, focus: &'static str, minutes: u32) -> RoundSuggestion {
    RoundSuggestion { kind, title, focus, minutes }
}

const BEHAVIORAL: RoundSuggestion =
    round("behavioral", "Behavioral", "past situations told with context, actions and measurable results", 30);
const HR: RoundSuggestion =
    round("hr", "Motivation and fit", "motivation, expectations, working style and logistics", 20);
const SYSTEM_DESIGN: RoundSuggestion =
    round("system_design", "System design", "architecture, trade-offs, scaling and failure handling", 45);

/// Keyword lists, checked in order: the first family with a keyword at the start of a word of the role wins
/// ("engineer" also matches "engineering"). Product, design and management come before software so that
/// "product manager" is product and "engineering manager" management.
const FAMILY_KEYWORDS: &[(RoleFamily, &[&str])] = &[
    (RoleFamily::Data, &["data", "machine learning", "ml", "analyst", "scientist", "statistic", "ai"]),
    (RoleFamily::Product, &["product manager", "product owner", "product lead", "pm"]),
    (RoleFamily::Design, &["design", "ux", "ui", "user research"]),
    (RoleFamily::Management, &["manager", "director", "head of", "vp", "chief"]),
    (
        RoleFamily::Software,
        &[
            "engineer",
            "developer",
            "programmer",
            "sre",
            "devops",
            "backend",
            "frontend",
            "full stack",
            "fullstack",
            "mobile",
            "software",
            "architect",
            "security",
            "tech lead",
        ],
    ),
    (RoleFamily::Commercial, &["sales", "account", "customer", "marketing", "support", "business development"]),
];

pub fn role_family(role: &str) -> RoleFamily {
    // " senior back end engineer": words separated by single spaces, so " keyword" finds a word start.
    let words: Vec<String> = role
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let role = format!(" {}", words.join(" "));
    FAMILY_KEYWORDS
        .iter()
        .find(|(_, keywords)| keywords.iter().any(|k| role.contains(&format!(" {k}"))))
        .map(|(family, _)| *family)
        .unwrap_or(RoleFamily::General)
}

/// The technical rounds of a family, most characteristic first.
fn technical_rounds(family: RoleFamily, level: ExperienceLevel) -> Vec<RoundSuggestion> {
    let senior = matches!(level, ExperienceLevel::Senior | ExperienceLevel::Staff);
    match family {
        RoleFamily::Software => {
            let mut rounds = vec![round("coding", "Coding", "problem solving, data structures, code quality", 45)];
            if senior {
                rounds.push(SYSTEM_DESIGN);
            }
            rounds.push(round("technical", "Technical deep dive", "depth in the candidate's own past systems", 30));
            rounds
        }
        RoleFamily::Data => vec![
            round(
                "technical",
                "Statistics and modelling",
                "statistics, experiment design, model choice and evaluation",
                40,
            ),
            round("case", "Data case study", "framing a business question as analysis and reading the result", 40),
        ],
        RoleFamily::Product => vec![
            round("case", "Product sense", "users, problems worth solving, prioritisation", 40),
            round("technical", "Execution and metrics", "goals, metrics, trade-offs and delivery", 35),
        ],
        RoleFamily::Design => vec![
            round("portfolio", "Portfolio walkthrough", "process, decisions and impact in past work", 40),
            round("case", "Design exercise", "understanding users and structuring a solution live", 45),
        ],
        RoleFamily::Management => vec![
            round("leadership", "People leadership", "hiring, feedback, growing and aligning a team", 40),
            round("technical", "Strategy and execution", "planning, prioritising and delivering through others", 35),
        ],
        RoleFamily::Commercial => vec![
            round("case", "Role play", "discovery, pitching and handling objections", 35),
            round("technical", "Domain knowledge", "market, customers and the numbers of the role", 30),
        ],
        RoleFamily::General => vec![round("technical", "Role knowledge", "the core skills the role needs", 35)],
    }
}

/// The rounds of an interview, in order.
pub fn suggest_rounds(role: &str, interview_type: InterviewType, level: ExperienceLevel) -> Vec<RoundSuggestion> {
    let technical = technical_rounds(role_family(role), level);
    match interview_type {
        InterviewType::Behavioral => vec![BEHAVIORAL],
        InterviewType::Hr => vec![HR],
        InterviewType::Technical => technical,
        InterviewType::Mixed => {
            let mut rounds = vec![BEHAVIORAL];
            rounds.extend(technical.into_iter().take(if level == ExperienceLevel::Intern { 1 } else { 2 }));
            rounds.push(HR);
            rounds
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_sorted_into_families() {
        assert_eq!(role_family("Senior Backend Engineer"), RoleFamily::Software);
        assert_eq!(role_family("Product Manager"), RoleFamily::Product);
        assert_eq!(role_family("Data Scientist"), RoleFamily::Data);
        assert_eq!(role_family("ML engineer"), RoleFamily::Data);
        assert_eq!(role_family("UX designer"), RoleFamily::Design);
        assert_eq!(role_family("Engineering Manager"), RoleFamily::Management);
        assert_eq!(role_family("Business development representative"), RoleFamily::Commercial);
        assert_eq!(role_family("Director of Operations"), RoleFamily::Management);
        assert_eq!(role_family("Account Executive"), RoleFamily::Commercial);
        assert_eq!(role_family("Chef"), RoleFamily::General);
    }

    #[test]
    fn senior_software_technical_interviews_include_system_design() {
        let kinds = |level| {
            suggest_rounds("Backend engineer", InterviewType::Technical, level)
                .iter()
                .map(|r| r.kind)
                .collect::<Vec<_>>()
        };
        assert!(kinds(ExperienceLevel::Senior).contains(&"system_design"));
        assert!(!kinds(ExperienceLevel::Junior).contains(&"system_design"));
    }

    #[test]
    fn a_mixed_interview_opens_behavioral_and_closes_with_fit() {
        let rounds = suggest_rounds("Data analyst", InterviewType::Mixed, ExperienceLevel::Mid);
        assert_eq!(rounds.first().unwrap().kind, "behavioral");
        assert_eq!(rounds.last().unwrap().kind, "hr");
        assert_eq!(rounds.len(), 4);
    }
}
