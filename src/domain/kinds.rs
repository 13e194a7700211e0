//! Closed vocabularies: user roles, interview types, experience levels and interview statuses. Each has one
//! spelling, used on the wire and in the database alike.

use std::fmt;
use std::str::FromStr;

/// The spelling of a value outside a closed vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected one of: {}", .expected.join(", "))]
pub struct UnknownVariant {
    pub expected: &'static [&'static str],
}

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { expected: &[$($text),+] }),
                }
            }
        }
    };
}

vocabulary!(
    /// What a user may do: candidates take interviews, coaches observe the ones shared with them, admins manage.
    Role { Candidate => "candidate", Coach => "coach", Admin => "admin" }
);

vocabulary!(
    /// The kind of interview a candidate asks for; `mixed` combines the others.
    InterviewType { Behavioral => "behavioral", Technical => "technical", Hr => "hr", Mixed => "mixed" }
);

vocabulary!(
    /// Seniority the questions and the grading are pitched at.
    ExperienceLevel { Intern => "intern", Junior => "junior", Mid => "mid", Senior => "senior", Staff => "staff" }
);

vocabulary!(
    /// Life cycle of an interview: scheduled at creation, in progress once a live session starts, then completed
    /// (with a report) or abandoned (without one).
    InterviewStatus {
        Scheduled => "scheduled",
        InProgress => "in_progress",
        Completed => "completed",
        Abandoned => "abandoned",
    }
);

vocabulary!(
    /// Who said a stored turn.
    Speaker { Candidate => "candidate", Interviewer => "interviewer" }
);

vocabulary!(
    /// Where an asked question came from: the bank, an LLM, or a follow-up to another question.
    QuestionSource { Bank => "bank", Llm => "llm", FollowUp => "follow_up" }
);

vocabulary!(
    /// The kind of a stored per-second sample.
    SampleKind { Speech => "speech", Vision => "vision" }
);

impl From<candor_interviewer::QuestionSource> for QuestionSource {
    fn from(source: candor_interviewer::QuestionSource) -> Self {
        match source {
            candor_interviewer::QuestionSource::Bank => Self::Bank,
            candor_interviewer::QuestionSource::Llm => Self::Llm,
            candor_interviewer::QuestionSource::FollowUp => Self::FollowUp,
        }
    }
}

impl From<InterviewType> for candor_interviewer::plan::InterviewKind {
    fn from(kind: InterviewType) -> Self {
        match kind {
            InterviewType::Behavioral => Self::Behavioral,
            InterviewType::Technical => Self::Technical,
            InterviewType::Hr => Self::Hr,
            InterviewType::Mixed => Self::Mixed,
        }
    }
}

impl From<ExperienceLevel> for candor_interviewer::plan::Level {
    fn from(level: ExperienceLevel) -> Self {
        match level {
            ExperienceLevel::Intern => Self::Intern,
            ExperienceLevel::Junior => Self::Junior,
            ExperienceLevel::Mid => Self::Mid,
            ExperienceLevel::Senior => Self::Senior,
            ExperienceLevel::Staff => Self::Staff,
        }
    }
}

impl InterviewStatus {
    /// Completed and abandoned interviews never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Abandoned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_spelling() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        for status in InterviewStatus::ALL {
            assert_eq!(status.as_str().parse::<InterviewStatus>().unwrap(), *status);
        }
    }

    #[test]
    fn an_unknown_spelling_lists_the_accepted_ones() {
        let err = "manager".parse::<Role>().unwrap_err();
        assert_eq!(err.to_string(), "expected one of: candidate, coach, admin");
    }
}
