//! Training data for a specialised interviewer model: `candor dataset export` writes completed interviews whose
//! candidates consented to it, one interview per line of JSONL in the chat format fine-tuning services accept
//! (`{"messages": [system, assistant, user, ...]}`: the interviewer is the assistant), with personal data
//! scrubbed from every text, and a manifest (count, filters, SHA-256 of the file).

use std::io::Write;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::{InterviewRecord, Store, StoreError, TurnRecord};

pub const FORMAT: &str = "candor-dataset/1";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Which interviews to export, beyond consent and completion.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filters {
    /// Created at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Role contains this (any case).
    pub role: Option<String>,
    /// Overall score at least this (0-100).
    pub min_score: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    pub created_at: String,
    pub file: String,
    pub count: usize,
    pub bytes: u64,
    pub sha256: String,
    pub filters: Filters,
    pub scrubbed: &'static [&'static str],
}

/// Exports into `dir` (`interviews.jsonl`, `manifest.json`); `progress(done, total)` after each interview.
pub async fn export(store: &Store, filters: &Filters, dir: &Path, progress: impl Fn(u64, u64)) -> Result<Manifest, DatasetError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DatasetError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let role = filters.role.as_deref().map(str::to_lowercase);
    let interviews: Vec<InterviewRecord> = store
        .dataset_interviews(filters.since_ms.unwrap_or(0), filters.min_score.unwrap_or(0.0))
        .await?
        .into_iter()
        .filter(|i| role.as_ref().is_none_or(|r| i.role.to_lowercase().contains(r)))
        .collect();
    let path = dir.join("interviews.jsonl");
    let mut lines = Vec::new();
    for (done, interview) in interviews.iter().enumerate() {
        let owner = store.user(interview.user_id).await?;
        let names: Vec<String> = owner.iter().flat_map(|u| u.name.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect();
        let rounds: Vec<String> = store.rounds(interview.id).await?.into_iter().map(|r| r.title).collect();
        let turns = store.turns(interview.id).await?;
        let line = conversation(interview, &rounds, &turns, &names);
        lines.extend_from_slice(line.to_string().as_bytes());
        lines.push(b'\n');
        progress(done as u64 + 1, interviews.len() as u64);
    }
    std::fs::File::create(&path).and_then(|mut f| f.write_all(&lines)).map_err(io(&path))?;
    let manifest = Manifest {
        format: FORMAT,
        created_at: crate::domain::rfc3339(crate::store::now_ms()),
        file: "interviews.jsonl".into(),
        count: interviews.len(),
        bytes: lines.len() as u64,
        sha256: Sha256::digest(&lines).iter().map(|b| format!("{b:02x}")).collect(),
        filters: filters.clone(),
        scrubbed: &["names", "emails", "phone numbers", "URLs", "ID-like numbers"],
    };
    let manifest_path = dir.join("manifest.json");
    let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    std::fs::write(&manifest_path, text).map_err(io(&manifest_path))?;
    Ok(manifest)
}

/// One interview as a chat: the system message sets the interviewer up (role, level, type, stages); the
/// interviewer's turns are the assistant's, the candidate's the user's, consecutive ones of a speaker joined.
fn conversation(interview: &InterviewRecord, rounds: &[String], turns: &[TurnRecord], names: &[String]) -> serde_json::Value {
    let system = format!(
        "You are a fair, structured interviewer running a {} interview for a {} {} candidate. Stages: {}. Ask one \
         question at a time, follow up when an answer lacks an example, the candidate's own actions or a result, \
         and never after a strong answer.",
        interview.interview_type,
        interview.experience_level,
        scrub(&interview.role, names),
        rounds.join(", "),
    );
    let mut messages = vec![json!({"role": "system", "content": system})];
    let mut last: Option<(&str, String)> = None;
    for turn in turns.iter().filter(|t| !t.text.trim().is_empty()) {
        let role = if turn.speaker == "interviewer" { "assistant" } else { "user" };
        let text = scrub(turn.text.trim(), names);
        last = match last {
            Some((r, mut joined)) if r == role => {
                joined.push(' ');
                joined.push_str(&text);
                Some((r, joined))
            }
            Some((r, joined)) => {
                messages.push(json!({"role": r, "content": joined}));
                Some((role, text))
            }
            None => Some((role, text)),
        };
    }
    if let Some((role, text)) = last {
        messages.push(json!({"role": role, "content": text}));
    }
    json!({"messages": messages})
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("valid"));
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|dev|ai|co|me|app|uk|de|fr|in)\b(?:/\S*)?")
        .expect("valid")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s().-]{6,}\d").expect("valid"));
static INTRODUCTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(my name is|i am called|call me|this is)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)").expect("valid"));

/// Personal data out of a text: the candidate's own name parts and names they introduce, emails, URLs, phone
/// numbers and ID-like tokens, each replaced by a placeholder. Plain numbers ("40 percent", "2019", "1,000
/// users") stay: they are the substance of answers.
pub fn scrub(text: &str, names: &[String]) -> String {
    let text = EMAIL.replace_all(text, "[EMAIL]");
    let text = URL.replace_all(&text, "[URL]");
    let text = PHONE.replace_all(&text, |c: &regex::Captures| {
        let digits = c[0].chars().filter(char::is_ascii_digit).count();
        // Long enough for a phone number, and not a number written with thousands separators.
        if digits >= 7 && !c[0].contains(',') { "[PHONE]".to_string() } else { c[0].to_string() }
    });
    let text = INTRODUCTION.replace_all(&text, "$1 [NAME]");
    text.split(' ')
        .map(|word| {
            let bare: String = word.trim_matches(|c: char| !c.is_alphanumeric()).to_string();
            let digits = bare.chars().filter(char::is_ascii_digit).count();
            let letters = bare.chars().filter(|c| c.is_alphabetic()).count();
            if names.iter().any(|n| n.len() >= 2 && n.eq_ignore_ascii_case(&bare)) {
                word.replace(&bare, "[NAME]")
            } else if (digits >= 3 && letters > 0) || (digits >= 6 && bare.chars().all(|c| c.is_ascii_digit())) {
                word.replace(&bare, "[ID]")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn personal_data_is_replaced_and_the_substance_of_answers_stays() {
        let names = vec!["Zelda".to_string(), "Quistorp".to_string()];
        let text = "Hi, I'm Zelda Quistorp, zelda.q@mail.example.com, call +1 (555) 010-9999 or see \
                    https://zelda.dev/cv and github.com/zq. My employee ID was EMP-204981 and badge 88412731. \
                    My name is Ann Lee. We cut latency by 40 percent in 2019 for 1,000,000 users, a 3.5x gain.";
        let clean = scrub(text, &names);
        for leaked in ["Zelda", "Quistorp", "zelda.q", "555", "010-9999", "zelda.dev", "github.com", "204981", "88412731", "Ann Lee"] {
            assert!(!clean.contains(leaked), "{leaked} leaked: {clean}");
        }
        for kept in ["40 percent", "2019", "1,000,000 users", "3.5x", "[NAME]", "[EMAIL]", "[PHONE]", "[URL]", "[ID]"] {
            assert!(clean.contains(kept), "{kept} missing: {clean}");
        }
    }
}
