//! Round plans: which rounds an interview has, from the job role, the interview type and the level. The role is
//! free text, so it is first sorted into a family by keywords; each family has its own technical rounds. The
//! finer `Track` (backend, frontend, data engineer...) picks the technical questions.

use serde::{Deserialize, Serialize};

/// The kind of interview a candidate asks for; `Mixed` combines the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterviewKind {
    Behavioral,
    Technical,
    Hr,
    Mixed,
}

/// Seniority the questions and the grading are pitched at, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Intern,
    Junior,
    Mid,
    Senior,
    Staff,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intern => "intern",
            Self::Junior => "junior",
            Self::Mid => "mid",
            Self::Senior => "senior",
            Self::Staff => "staff",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// " senior back end engineer": lower case, words separated by single spaces, so " keyword" finds a word start.
fn words_of(role: &str) -> String {
    let words: Vec<String> = role
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    format!(" {}", words.join(" "))
}

fn has_keyword(role: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| role.contains(&format!(" {k}")))
}

pub fn role_family(role: &str) -> RoleFamily {
    let role = words_of(role);
    FAMILY_KEYWORDS
        .iter()
        .find(|(_, keywords)| has_keyword(&role, keywords))
        .map(|(family, _)| *family)
        .unwrap_or(RoleFamily::General)
}

/// The role track whose technical questions an interview draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    Backend,
    Frontend,
    Fullstack,
    Mobile,
    DevopsSre,
    Security,
    DataScientist,
    DataEngineer,
    MlEngineer,
    EngineeringManager,
    ProductManager,
    Designer,
    Sales,
}

impl Track {
    pub const ALL: [Track; 13] = [
        Track::Backend,
        Track::Frontend,
        Track::Fullstack,
        Track::Mobile,
        Track::DevopsSre,
        Track::Security,
        Track::DataScientist,
        Track::DataEngineer,
        Track::MlEngineer,
        Track::EngineeringManager,
        Track::ProductManager,
        Track::Designer,
        Track::Sales,
    ];

    /// The bank file of the track's technical questions.
    pub fn file(self) -> &'static str {
        match self {
            Self::Backend => "backend",
            Self::Frontend => "frontend",
            Self::Fullstack => "fullstack",
            Self::Mobile => "mobile",
            Self::DevopsSre => "devops_sre",
            Self::Security => "security",
            Self::DataScientist => "data_scientist",
            Self::DataEngineer => "data_engineer",
            Self::MlEngineer => "ml_engineer",
            Self::EngineeringManager => "engineering_manager",
            Self::ProductManager => "product_manager",
            Self::Designer => "designer",
            Self::Sales => "sales",
        }
    }
}

/// Track keywords, checked in order; the family decides when none matches.
const TRACK_KEYWORDS: &[(Track, &[&str])] = &[
    (Track::EngineeringManager, &["engineering manager", "head of engineering", "director of engineering", "vp engineering", "cto"]),
    (Track::ProductManager, &["product manager", "product owner", "product lead", "pm"]),
    (Track::MlEngineer, &["ml engineer", "machine learning engineer", "mlops", "ai engineer", "ml ops"]),
    (Track::DataEngineer, &["data engineer", "analytics engineer", "etl", "data platform"]),
    (Track::DataScientist, &["data scientist", "data analyst", "analyst", "statistician", "scientist", "research"]),
    (Track::Security, &["security", "appsec", "infosec", "penetration", "pentest"]),
    (Track::DevopsSre, &["sre", "site reliability", "devops", "platform", "infrastructure", "cloud", "ops"]),
    (Track::Mobile, &["mobile", "ios", "android", "flutter", "react native"]),
    (Track::Fullstack, &["full stack", "fullstack", "full-stack"]),
    (Track::Frontend, &["frontend", "front end", "ui engineer", "web developer", "javascript", "react"]),
    (Track::Designer, &["designer", "design", "ux", "ui", "user research"]),
    (Track::Sales, &["sales", "account", "customer", "business development", "success", "support", "marketing"]),
];

pub fn track(role: &str) -> Track {
    let words = words_of(role);
    if let Some((track, _)) = TRACK_KEYWORDS.iter().find(|(_, keywords)| has_keyword(&words, keywords)) {
        return *track;
    }
    match role_family(role) {
        RoleFamily::Data => Track::DataScientist,
        RoleFamily::Product => Track::ProductManager,
        RoleFamily::Design => Track::Designer,
        RoleFamily::Management => Track::EngineeringManager,
        RoleFamily::Commercial => Track::Sales,
        RoleFamily::Software | RoleFamily::General => Track::Backend,
    }
}

/// The technical rounds of a family, most characteristic first.
fn technical_rounds(family: RoleFamily, level: Level) -> Vec<RoundSuggestion> {
    let senior = matches!(level, Level::Senior | Level::Staff);
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
pub fn suggest_rounds(role: &str, kind: InterviewKind, level: Level) -> Vec<RoundSuggestion> {
    let technical = technical_rounds(role_family(role), level);
    match kind {
        InterviewKind::Behavioral => vec![BEHAVIORAL],
        InterviewKind::Hr => vec![HR],
        InterviewKind::Technical => technical,
        InterviewKind::Mixed => {
            let mut rounds = vec![BEHAVIORAL];
            rounds.extend(technical.into_iter().take(if level == Level::Intern { 1 } else { 2 }));
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
    fn roles_are_sorted_into_tracks() {
        assert_eq!(track("Senior Backend Engineer"), Track::Backend);
        assert_eq!(track("React developer"), Track::Frontend);
        assert_eq!(track("Full-stack engineer"), Track::Fullstack);
        assert_eq!(track("iOS engineer"), Track::Mobile);
        assert_eq!(track("Site Reliability Engineer"), Track::DevopsSre);
        assert_eq!(track("Application security engineer"), Track::Security);
        assert_eq!(track("Data Scientist"), Track::DataScientist);
        assert_eq!(track("Data Engineer"), Track::DataEngineer);
        assert_eq!(track("Machine learning engineer"), Track::MlEngineer);
        assert_eq!(track("Engineering Manager"), Track::EngineeringManager);
        assert_eq!(track("Product Manager"), Track::ProductManager);
        assert_eq!(track("Product designer"), Track::Designer);
        assert_eq!(track("Account Executive"), Track::Sales);
        assert_eq!(track("Software engineer"), Track::Backend);
    }

    #[test]
    fn senior_software_technical_interviews_include_system_design() {
        let kinds = |level| {
            suggest_rounds("Backend engineer", InterviewKind::Technical, level).iter().map(|r| r.kind).collect::<Vec<_>>()
        };
        assert!(kinds(Level::Senior).contains(&"system_design"));
        assert!(!kinds(Level::Junior).contains(&"system_design"));
    }

    #[test]
    fn a_mixed_interview_opens_behavioral_and_closes_with_fit() {
        let rounds = suggest_rounds("Data analyst", InterviewKind::Mixed, Level::Mid);
        assert_eq!(rounds.first().unwrap().kind, "behavioral");
        assert_eq!(rounds.last().unwrap().kind, "hr");
        assert_eq!(rounds.len(), 4);
    }
}
