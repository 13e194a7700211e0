//! What an answer shows: the signals the built-in brain follows up on and grades, all read from the words said.
//! Fillers ("um", "uh", "you know") are removed before anything is measured, so disfluency, like accent or
//! anything seen on camera, can never lower a content signal.

use serde::{Deserialize, Serialize};

use crate::bank::{Question, QuestionKind};

/// One word of an answer with its time in the session (none for typed answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

impl Word {
    pub fn typed(text: &str) -> Self {
        Self { text: text.to_string(), start_ms: None, end_ms: None }
    }
}

/// Typed text as words without times.
pub fn typed_words(text: &str) -> Vec<Word> {
    text.split_whitespace().map(Word::typed).collect()
}

/// A quote from the answer with where it was said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub text: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

/// What an answer lacks, in the order follow-ups are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lack {
    OffTopic,
    TooShort,
    Example,
    OwnAction,
    Result,
    Structure,
    Depth,
}

impl Lack {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OffTopic => "off_topic",
            Self::TooShort => "too_short",
            Self::Example => "example",
            Self::OwnAction => "own_action",
            Self::Result => "result",
            Self::Structure => "structure",
            Self::Depth => "depth",
        }
    }
}

const FILLERS: &[&str] = &["um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "mm", "ah"];
const FILLER_PAIRS: &[(&str, &str)] = &[("you", "know"), ("i", "mean"), ("sort", "of"), ("kind", "of")];
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "for", "with", "at", "by", "from", "as", "is",
    "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "you", "your", "i", "we",
    "they", "he", "she", "my", "our", "their", "what", "how", "why", "when", "which", "who", "do", "does", "did",
    "have", "has", "had", "will", "would", "can", "could", "should", "about", "into", "than", "then", "so", "if",
    "not", "no", "yes", "tell", "me", "time", "some", "any", "all", "one", "more", "most", "also", "just", "there",
    "here", "up", "out", "over", "like", "get", "got", "make", "made", "way", "thing", "things",
];
/// Markers of a concrete past situation.
const EXAMPLE_MARKERS: &[&str] = &[
    "when i", "one time", "last year", "last month", "last quarter", "at my", "in my last", "in my previous",
    "in my current", "for example", "for instance", "there was a time", "a project where", "we had a", "i had a",
    "at the time", "recently", "a few years ago", "years ago", "back when", "during my", "on my team",
];
const PAST_VERBS: &[&str] = &[
    "was", "were", "had", "did", "made", "led", "built", "wrote", "took", "went", "found", "decided", "saw",
    "told", "gave", "got", "ran", "began", "chose", "drove", "grew", "knew", "left", "lost", "met", "paid", "put",
    "said", "sent", "set", "spoke", "spent", "taught", "thought", "won", "brought", "bought", "caught", "felt",
    "held", "kept", "meant", "shut", "sold", "stood", "understood",
];
/// Verbs of doing: "I" followed closely by one of these (or any past-tense verb) is the candidate's own action.
const ACTION_VERBS: &[&str] = &[
    "built", "led", "wrote", "designed", "decided", "proposed", "implemented", "created", "fixed", "talked",
    "organized", "organised", "set", "ran", "owned", "drove", "introduced", "pushed", "convinced", "analysed",
    "analyzed", "measured", "reviewed", "started", "changed", "migrated", "rewrote", "automated", "mentored",
    "hired", "negotiated", "presented", "shipped", "launched", "delivered", "reduced", "improved", "found",
    "tested", "debugged", "refactored", "spoke", "asked", "suggested", "took", "made", "coordinated", "planned",
    "prioritized", "prioritised", "chose", "learned", "researched", "interviewed", "sketched", "prototyped",
    "called", "closed", "pitched", "trained", "would", "will", "start", "build", "use", "ask", "measure",
    "check", "look", "talk", "write", "design", "set", "run", "pick", "choose", "make", "try", "split", "add",
];
const RESULT_MARKERS: &[&str] = &[
    "reduced", "increased", "improved", "saved", "cut", "grew", "doubled", "halved", "dropped", "raised",
    "shipped", "launched", "delivered", "won", "closed", "achieved", "resulted", "led to", "outcome", "result",
    "as a result", "which meant", "in the end", "eventually", "afterwards", "percent", "faster", "slower",
    "fewer", "lower", "higher", "no longer", "went from", "went down", "went up", "feedback was", "learned that",
];
const TASK_MARKERS: &[&str] = &[
    "goal", "needed to", "had to", "my job", "my role", "responsible", "task", "asked to", "wanted to",
    "objective", "challenge", "problem was", "the aim", "deadline", "requirement", "supposed to",
];
const SITUATION_MARKERS: &[&str] = &[
    "when", "at my", "the team", "project", "company", "client", "customer", "there was", "we had", "back then",
    "at the time", "context", "background", "working on", "in my last", "in my previous",
];
const SIGNPOSTS: &[&str] = &[
    "first", "second", "third", "then", "next", "finally", "because", "so that", "which means", "the reason",
    "trade-off", "tradeoff", "on the other hand", "however", "in short", "overall", "to summarise", "to summarize",
];
/// Verbs of claims worth probing when said with specifics.
const CLAIM_VERBS: &[&str] = &["led", "designed", "architected", "built", "scaled", "created", "founded", "owned", "drove", "invented"];

/// Lower case, no surrounding punctuation.
pub fn normalize(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-').to_lowercase()
}

/// A crude stem: enough to match "caching" with "cache" and "indexes" with "index".
pub fn stem(word: &str) -> String {
    let w = word.trim_end_matches('\'');
    for suffix in ["ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"] {
        if w.len() > suffix.len() + 3 && w.ends_with(suffix) {
            return w[..w.len() - suffix.len()].to_string();
        }
    }
    w.to_string()
}

/// Content words of a text, stemmed: what matching works on.
pub fn content_stems(text: &str) -> Vec<String> {
    text.split_whitespace().map(normalize).filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str())).map(|w| stem(&w)).collect()
}

/// A sentence of the answer: its words' range.
#[derive(Debug, Clone, PartialEq)]
struct Sentence {
    from: usize,
    to: usize,
}

/// The signals of an answer to a question.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The answer's words without fillers.
    pub words: Vec<Word>,
    /// Normalised text without fillers, with spaces around, for phrase matching.
    spaced: String,
    sentences: Vec<Sentence>,
    pub example: bool,
    /// Times the candidate says "I" with an action verb, and says "we".
    pub own_actions: usize,
    pub we: usize,
    pub result: bool,
    pub numbers: usize,
    pub situation: bool,
    pub task: bool,
    pub signposts: usize,
    /// The question's keywords found in the answer.
    pub keywords_hit: Vec<String>,
    /// Indices of the question's talking points the answer gives evidence for.
    pub points_hit: Vec<usize>,
    pub points: usize,
    pub on_topic: bool,
    /// A sentence making a strong claim with specifics, worth probing.
    pub claim: bool,
}

fn contains_phrase(spaced: &str, phrase: &str) -> bool {
    spaced.contains(&format!(" {phrase} "))
}

fn is_number(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
        || [
            "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twenty", "thirty", "fifty",
            "hundred", "thousand", "million", "half", "twice", "double",
        ]
        .contains(&word)
}

impl Analysis {
    pub fn of(question: &Question, words: &[Word]) -> Self {
        let words = without_fillers(words);
        let normalized: Vec<String> = words.iter().map(|w| normalize(&w.text)).collect();
        let spaced = format!(" {} ", normalized.join(" "));
        let mut sentences = Vec::new();
        let mut from = 0;
        for (i, w) in words.iter().enumerate() {
            if w.text.ends_with(['.', '?', '!']) || i + 1 == words.len() {
                sentences.push(Sentence { from, to: i + 1 });
                from = i + 1;
            }
        }
        let past = normalized.iter().filter(|w| PAST_VERBS.contains(&w.as_str()) || (w.len() > 4 && w.ends_with("ed"))).count();
        let own_actions = normalized
            .windows(3)
            .filter(|w| w[0] == "i" && [&w[1], &w[2]].iter().any(|v| ACTION_VERBS.contains(&v.as_str()) || (v.len() > 4 && v.ends_with("ed"))))
            .count()
            + usize::from(normalized.len() >= 2 && normalized[normalized.len() - 2] == "i");
        let we = normalized.iter().filter(|w| *w == "we" || *w == "we're" || *w == "we've" || *w == "our").count();
        let numbers = normalized.iter().filter(|w| is_number(w)).count();
        let stems: Vec<String> = normalized.iter().map(|w| stem(w)).collect();
        let keywords_hit: Vec<String> = question
            .keywords
            .iter()
            .filter(|k| {
                if k.contains(' ') || k.contains('-') {
                    contains_phrase(&spaced, k)
                } else {
                    stems.contains(&stem(k))
                }
            })
            .cloned()
            .collect();
        let points_hit: Vec<usize> = question
            .talking_points
            .iter()
            .enumerate()
            .filter(|(_, point)| {
                let point_stems: Vec<String> = content_stems(point).into_iter().filter(|s| s.len() > 2).collect();
                let hits = point_stems.iter().filter(|s| stems.contains(s)).count();
                let keyword_in_point = keywords_hit.iter().any(|k| point.to_lowercase().contains(k.as_str()));
                keyword_in_point || (hits > 0 && hits * 2 >= point_stems.len())
            })
            .map(|(i, _)| i)
            .collect();
        let topic: Vec<String> = content_stems(&question.text)
            .into_iter()
            .chain(question.keywords.iter().map(|k| stem(k)))
            .chain(question.talking_points.iter().flat_map(|p| content_stems(p)))
            .filter(|s| s.len() > 2)
            .collect();
        let topic_hits = stems.iter().filter(|s| topic.contains(s)).collect::<std::collections::HashSet<_>>().len();
        let claim = sentences.iter().any(|s| {
            let sentence = &normalized[s.from..s.to];
            sentence.windows(2).any(|w| w[0] == "i" && CLAIM_VERBS.contains(&w[1].as_str()))
                && sentence.iter().any(|w| is_number(w) || keywords_hit.iter().any(|k| stem(k) == stem(w)))
        });
        Self {
            example: EXAMPLE_MARKERS.iter().any(|m| contains_phrase(&spaced, m)) || past >= 4,
            own_actions,
            we,
            result: RESULT_MARKERS.iter().any(|m| contains_phrase(&spaced, m)) || (numbers >= 1 && past >= 2),
            numbers,
            situation: SITUATION_MARKERS.iter().any(|m| contains_phrase(&spaced, m)),
            task: TASK_MARKERS.iter().any(|m| contains_phrase(&spaced, m)),
            signposts: SIGNPOSTS.iter().filter(|m| contains_phrase(&spaced, m)).count(),
            on_topic: topic_hits >= 2 || !keywords_hit.is_empty(),
            points: question.talking_points.len(),
            keywords_hit,
            points_hit,
            claim,
            words,
            spaced,
            sentences,
        }
    }

    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Share of the talking points evidenced, 0 to 1.
    pub fn coverage(&self) -> f32 {
        if self.points == 0 { 0.0 } else { self.points_hit.len() as f32 / self.points as f32 }
    }

    /// Share of the question's keywords used, out of at most six (a strong answer need not use them all).
    pub fn keyword_share(&self, keywords: usize) -> f32 {
        self.keywords_hit.len() as f32 / keywords.clamp(1, 6) as f32
    }

    /// The parts of a STAR answer present: situation, task, action, result.
    pub fn star_parts(&self) -> usize {
        [self.situation || self.example, self.task, self.own_actions > 0, self.result].iter().filter(|p| **p).count()
    }

    /// Whether the answer mentions `term` (a lower-case word or phrase).
    pub fn mentions(&self, term: &str) -> bool {
        contains_phrase(&self.spaced, term) || (!term.contains(' ') && self.spaced.split(' ').any(|w| stem(w) == stem(term)))
    }

    /// What the answer lacks for this kind of question, most important first; empty for a strong answer.
    pub fn lacks(&self, kind: QuestionKind) -> Vec<Lack> {
        let mut lacks = Vec::new();
        let words = self.word_count();
        let minimum = if kind == QuestionKind::Experience { 40 } else { 25 };
        if words >= 12 && !self.on_topic {
            lacks.push(Lack::OffTopic);
        }
        if words < minimum {
            lacks.push(Lack::TooShort);
        }
        match kind {
            QuestionKind::Experience => {
                if !self.example {
                    lacks.push(Lack::Example);
                }
                if self.own_actions == 0 {
                    lacks.push(Lack::OwnAction);
                }
                if !self.result {
                    lacks.push(Lack::Result);
                }
                if !(self.situation || self.task) {
                    lacks.push(Lack::Structure);
                }
            }
            QuestionKind::Knowledge | QuestionKind::Scenario => {
                if self.coverage() < 0.5 && self.keywords_hit.len() < 3 {
                    lacks.push(Lack::Depth);
                }
            }
            QuestionKind::Motivation => {
                if self.coverage() < 0.34 && self.keywords_hit.is_empty() {
                    lacks.push(Lack::Depth);
                }
            }
        }
        lacks
    }

    /// The sentence that best shows something, as a quote with its times; `score` rates a sentence's words.
    pub fn quote_where(&self, score: impl Fn(&str) -> usize) -> Option<Quote> {
        let best = self
            .sentences
            .iter()
            .max_by_key(|s| {
                let text = self.sentence_text(s).to_lowercase();
                (score(&format!(" {} ", text.split_whitespace().map(normalize).collect::<Vec<_>>().join(" "))), usize::MAX - s.from)
            })?;
        let words = &self.words[best.from..best.to];
        let text = self.sentence_text(best);
        let short: String = if text.split_whitespace().count() > 30 {
            format!("{}...", text.split_whitespace().take(30).collect::<Vec<_>>().join(" "))
        } else {
            text
        };
        Some(Quote { text: short, start_ms: words.first().and_then(|w| w.start_ms), end_ms: words.last().and_then(|w| w.end_ms) })
    }

    fn sentence_text(&self, s: &Sentence) -> String {
        self.words[s.from..s.to].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// Scorers for `quote_where`: keywords, results, actions.
    pub fn keyword_score<'a>(&'a self) -> impl Fn(&str) -> usize + 'a {
        move |s: &str| self.keywords_hit.iter().filter(|k| s.contains(&format!(" {k}")) || s.contains(&stem(k))).count()
    }
}

pub fn result_score(s: &str) -> usize {
    RESULT_MARKERS.iter().filter(|m| s.contains(&format!(" {m} "))).count() * 2
        + s.split_whitespace().filter(|w| is_number(w)).count()
}

pub fn action_score(s: &str) -> usize {
    s.split_whitespace().collect::<Vec<_>>().windows(2).filter(|w| w[0] == "i" && ACTION_VERBS.contains(&w[1])).count()
}

/// The words without fillers: single-word ones, and "you know", "I mean", "sort of", "kind of" when they stand
/// between commas or pauses is not checked; two-word fillers are removed only when followed by a comma.
fn without_fillers(words: &[Word]) -> Vec<Word> {
    let mut kept = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let word = normalize(&words[i].text);
        if FILLERS.contains(&word.as_str()) {
            i += 1;
            continue;
        }
        if i + 1 < words.len() && words[i + 1].text.ends_with(',') {
            let next = normalize(&words[i + 1].text);
            if FILLER_PAIRS.contains(&(word.as_str(), next.as_str())) {
                i += 2;
                continue;
            }
        }
        kept.push(words[i].clone());
        i += 1;
    }
    kept
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bank::{Probes, Stage};

    pub(crate) fn question(kind: QuestionKind) -> Question {
        Question {
            id: "q".into(),
            stage: Stage::Behavioral,
            round: "behavioral".into(),
            levels: vec![crate::plan::Level::Mid],
            kind,
            text: "Tell me about a time you made a slow service faster.".into(),
            competencies: vec!["scalability".into()],
            talking_points: vec!["how the bottleneck was found".into(), "what was changed and why".into(), "the measured improvement".into()],
            keywords: vec!["profil".into(), "latency".into(), "cache".into(), "index".into(), "p99".into(), "query".into()],
            probes: Probes::default(),
        }
    }

    #[test]
    fn a_star_answer_shows_every_part_and_lacks_nothing() {
        let answer = "At my last company our checkout service was slow and my task was to bring the p99 latency under \
            200 milliseconds before the holiday sale. I profiled the service and found that one query scanned the \
            whole orders table, so I added an index and I put a cache in front of the product lookups. As a result \
            the p99 latency dropped from 900 to 150 milliseconds and the sale went through without incidents.";
        let a = Analysis::of(&question(QuestionKind::Experience), &typed_words(answer));
        assert!(a.example && a.own_actions >= 2 && a.result && a.situation && a.task, "{a:?}");
        assert_eq!(a.star_parts(), 4);
        assert!(a.lacks(QuestionKind::Experience).is_empty(), "{:?}", a.lacks(QuestionKind::Experience));
        assert!(a.coverage() >= 0.33 && a.keywords_hit.len() >= 4, "{:?} {:?}", a.points_hit, a.keywords_hit);
    }

    #[test]
    fn vague_answers_lack_what_a_follow_up_would_ask_for() {
        let q = question(QuestionKind::Experience);
        let short = Analysis::of(&q, &typed_words("We made it faster with caching."));
        assert_eq!(short.lacks(q.kind).first(), Some(&Lack::TooShort));
        let we_only = "We noticed the service was slow, so we looked at the database, and we decided together to \
            add caching, and we also tuned some queries, and after that we were all happy with how the service \
            behaved, and the team moved on to the next project we had planned for the quarter.";
        let lacks = Analysis::of(&q, &typed_words(we_only)).lacks(q.kind);
        assert!(lacks.contains(&Lack::OwnAction), "{lacks:?}");
        let off = "I really enjoy hiking in the mountains on weekends and I think the outdoors gives me energy, I also \
            like cooking for friends and trying new recipes from different countries when I have free evenings.";
        assert_eq!(Analysis::of(&q, &typed_words(off)).lacks(q.kind).first(), Some(&Lack::OffTopic));
    }

    #[test]
    fn fillers_are_removed_before_anything_is_measured() {
        let q = question(QuestionKind::Experience);
        let clean = "I profiled the service and added an index, and the latency dropped by half.";
        let fillers = "Um, I, uh, profiled the service and, um, added an index, and, you know, the latency dropped by half.";
        assert_eq!(Analysis::of(&q, &typed_words(clean)).word_count(), Analysis::of(&q, &typed_words(fillers)).word_count());
        assert_eq!(Analysis::of(&q, &typed_words(clean)).keywords_hit, Analysis::of(&q, &typed_words(fillers)).keywords_hit);
    }

    #[test]
    fn quotes_carry_the_times_they_were_said() {
        let q = question(QuestionKind::Experience);
        let words: Vec<Word> = "We were slow. I added an index and latency dropped by half."
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| Word { text: w.into(), start_ms: Some(1000 + i as u64 * 300), end_ms: Some(1200 + i as u64 * 300) })
            .collect();
        let a = Analysis::of(&q, &words);
        let quote = a.quote_where(result_score).unwrap();
        assert!(quote.text.starts_with("I added an index"), "{quote:?}");
        assert_eq!((quote.start_ms, quote.end_ms), (Some(1900), Some(4500)));
    }
}
