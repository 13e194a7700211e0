//! Free-text fields with length rules: passwords, person names, job roles and job descriptions.

use secrecy::{ExposeSecret, SecretString};

use super::FieldError;

/// Trims `raw` and checks its length in characters.
fn bounded(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let text = raw.trim();
    let len = text.chars().count();
    if len < min {
        Err(FieldError::new(
            field,
            if min == 1 { "must not be empty".to_string() } else { format!("must be at least {min} characters") },
        ))
    } else if len > max {
        Err(FieldError::new(field, format!("must be at most {max} characters")))
    } else {
        Ok(text.to_string())
    }
}

/// A new password. Length is the rule that matters (NIST SP 800-63B): at least 10 characters; at most 256 so
/// hashing cost stays bounded. Kept secret so it never reaches a log.
pub struct Password(SecretString);

impl Password {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: SecretString) -> Result<Self, FieldError> {
        let len = raw.expose_secret().chars().count();
        if len < Self::MIN_LEN {
            Err(FieldError::new("password", format!("must be at least {} characters", Self::MIN_LEN)))
        } else if len > Self::MAX_LEN {
            Err(FieldError::new("password", format!("must be at most {} characters", Self::MAX_LEN)))
        } else {
            Ok(Self(raw))
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                bounded($field, raw, $min, $max).map(Self)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

bounded_text!(
    /// A person's display name.
    PersonName, "name", 1, 100
);
bounded_text!(
    /// The job a candidate practises for, e.g. "Backend engineer".
    JobRole, "role", 2, 100
);
bounded_text!(
    /// A pasted job description that steers the questions; 20,000 characters hold any real posting.
    JobDescription, "job_description", 1, 20_000
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_shorter_than_ten_characters_is_rejected() {
        assert!(Password::parse("123456789".into()).is_err());
        assert!(Password::parse("1234567890".into()).is_ok());
    }

    #[test]
    fn names_are_trimmed_and_may_not_be_blank() {
        assert_eq!(PersonName::parse("  Ada ").unwrap().as_ref(), "Ada");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
    }
}
