//! Domain types: every value that crosses the API boundary is parsed once into one of these, so handlers and the
//! store never carry raw, unchecked strings. Parsing failures name the field and the rule that failed.

mod email;
mod ids;
mod kinds;
mod text;

pub use email::Email;
pub use ids::{InterviewId, UserId};
pub use kinds::{ExperienceLevel, InterviewStatus, InterviewType, QuestionSource, Role, SampleKind, Speaker};
pub use text::{JobDescription, JobRole, Password, PersonName};

/// Why one field of a request was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Collects field errors while a request body is parsed, so one response lists every problem at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Keeps the value on success; records the error and returns `None` otherwise.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }
}

/// Unix milliseconds to RFC 3339, as times appear on the wire and in exports.
pub fn rfc3339(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
