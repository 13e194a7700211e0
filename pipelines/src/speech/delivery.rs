//! Delivery of a turn from its words and how long its voice lasted: pace (words per minute), fillers, pauses
//! (between word times) and speaking time.
//!
//! Whisper-style transcripts drop many disfluencies, so filler counts are a floor, not an exact figure; the STT
//! stage is prompted to keep them (see `stt`). "Like" is only a filler where it is not a verb or a comparison:
//! after "I/you/would/feel/look...", "like" is content; after "was/and/so", between pauses or next to a
//! comma, it is a filler.

use std::collections::BTreeMap;

use super::TimedWord;
use super::text::spoken_length;

/// Single-word fillers.
pub const FILLER_WORDS: &[&str] = &["um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "mm", "ah", "basically"];
/// Two-word fillers, matched as consecutive words.
pub const FILLER_PHRASES: &[&str] = &["you know", "i mean", "sort of", "kind of"];
/// Words after which "like" is a verb or a comparison, not a filler.
const LIKE_IS_CONTENT_AFTER: &[&str] = &[
    "i",
    "you",
    "we",
    "they",
    "he",
    "she",
    "would",
    "i'd",
    "you'd",
    "we'd",
    "do",
    "don't",
    "did",
    "didn't",
    "look",
    "looks",
    "looked",
    "looking",
    "feel",
    "feels",
    "felt",
    "seem",
    "seems",
    "seemed",
    "sound",
    "sounds",
    "something",
    "things",
    "anything",
    "nothing",
    "just",
    "more",
    "much",
    "really",
    "also",
];
/// Words after which "like" is a filler.
const LIKE_IS_FILLER_AFTER: &[&str] = &[
    "was", "is", "it's", "and", "but", "so", "um", "uh", "it", "i'm", "we're", "they're", "you're", "he's", "she's",
    "then", "like", "were",
];
/// A silence between words at least this long is a pause.
pub const PAUSE_MS: u64 = 2000;
/// A silence this long around "like" marks it as a filler.
const LIKE_PAUSE_MS: u64 = 300;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// Words that are not fillers, as spoken ("40%" is two).
    pub content_words: usize,
    /// Content words per minute of speaking time, when there is at least a second of it.
    pub wpm: Option<f32>,
    pub fillers: usize,
    /// Each filler's count, e.g. {"um": 3, "you know": 1}.
    pub filler_counts: BTreeMap<String, usize>,
    pub filler_per_min: f32,
    pub longest_pause_ms: u64,
    /// Silences between words of `PAUSE_MS` or more.
    pub long_pauses: usize,
    /// From the voice's start to its end (`analyze_spoken`), or first word's start to last word's end.
    pub speaking_ms: u64,
}

/// Which word indices are fillers, and the filler each belongs to.
pub fn find_fillers(words: &[TimedWord]) -> Vec<(usize, String)> {
    let normalized: Vec<String> = words.iter().map(TimedWord::normalized).collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if i + 1 < words.len() {
            let pair = format!("{} {}", normalized[i], normalized[i + 1]);
            if FILLER_PHRASES.contains(&pair.as_str()) && !(pair == "kind of" && follows_article(&normalized, i)) {
                found.push((i, pair.clone()));
                found.push((i + 1, pair));
                i += 2;
                continue;
            }
        }
        let word = normalized[i].as_str();
        if FILLER_WORDS.contains(&word) || (word == "like" && like_is_filler(words, &normalized, i)) {
            found.push((i, word.to_string()));
        }
        i += 1;
    }
    found
}

/// "a kind of", "the kind of", "what kind of": a noun phrase, not a hedge.
fn follows_article(normalized: &[String], i: usize) -> bool {
    i > 0 && ["a", "the", "what", "this", "that", "which", "any", "some"].contains(&normalized[i - 1].as_str())
}

fn like_is_filler(words: &[TimedWord], normalized: &[String], i: usize) -> bool {
    let comma = words[i].text.ends_with(',') || (i > 0 && words[i - 1].text.ends_with(','));
    let pause_before = i > 0 && words[i].start_ms.saturating_sub(words[i - 1].end_ms) >= LIKE_PAUSE_MS;
    let pause_after = i + 1 < words.len() && words[i + 1].start_ms.saturating_sub(words[i].end_ms) >= LIKE_PAUSE_MS;
    let previous = (i > 0).then(|| normalized[i - 1].as_str());
    if previous.is_some_and(|p| LIKE_IS_CONTENT_AFTER.contains(&p)) && !comma {
        return false;
    }
    comma || pause_before || pause_after || previous.is_none_or(|p| LIKE_IS_FILLER_AFTER.contains(&p))
}

/// Delivery over the words' own span, first word's start to last word's end: for words whose own times hold
/// (a test's, an offline decode's).
pub fn analyze(words: &[TimedWord]) -> Delivery {
    let Some((first, last)) = words.first().zip(words.last()) else { return Delivery::default() };
    analyze_spoken(words, last.end_ms.saturating_sub(first.start_ms))
}

/// Delivery of a turn whose voice lasted `speaking_ms`, from its start to its end as voice activity found them:
/// what pace and fillers per minute are measured over on the live path. Whisper's word times cannot be timed
/// on there: with the shortened audio window they bunch up, often all at the turn's end, so a short turn's
/// words could span nothing and a session's pace would count their words in no time at all.
pub fn analyze_spoken(words: &[TimedWord], speaking_ms: u64) -> Delivery {
    if words.is_empty() {
        return Delivery::default();
    }
    let fillers = find_fillers(words);
    let mut filler_counts = BTreeMap::new();
    let mut previous_index = None;
    for (index, filler) in &fillers {
        // A two-word filler is one filler.
        if FILLER_PHRASES.contains(&filler.as_str()) && previous_index == Some(index.wrapping_sub(1)) {
            previous_index = None;
            continue;
        }
        *filler_counts.entry(filler.clone()).or_insert(0) += 1;
        previous_index = Some(*index);
    }
    let filler_total: usize = filler_counts.values().sum();
    let minutes = speaking_ms as f32 / 60_000.0;
    // Words as spoken: "40%" is two words said, not one.
    let filler_at: std::collections::HashSet<usize> = fillers.iter().map(|(i, _)| *i).collect();
    let content_words: usize = (0..words.len()).filter(|i| !filler_at.contains(i)).map(|i| spoken_length(&words[i].text)).sum();
    let gaps: Vec<u64> = words.windows(2).map(|w| w[1].start_ms.saturating_sub(w[0].end_ms)).collect();
    Delivery {
        content_words,
        wpm: (speaking_ms >= 1000).then(|| content_words as f32 / minutes),
        fillers: filler_total,
        filler_per_min: if speaking_ms >= 1000 { filler_total as f32 / minutes } else { 0.0 },
        filler_counts,
        longest_pause_ms: gaps.iter().copied().max().unwrap_or(0),
        long_pauses: gaps.iter().filter(|g| **g >= PAUSE_MS).count(),
        speaking_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words spaced evenly: `text` spoken at `wpm`, with `gaps` extra silence (ms) after given word indices.
    fn spoken(text: &str, wpm: f32, gaps: &[(usize, u64)]) -> Vec<TimedWord> {
        let per_word = (60_000.0 / wpm) as u64;
        let mut t = 1000;
        text.split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                let word = TimedWord::new(w, t, t + per_word * 4 / 5);
                t += per_word + gaps.iter().find(|(at, _)| *at == i).map_or(0, |(_, g)| *g);
                word
            })
            .collect()
    }

    #[test]
    fn pace_is_content_words_per_minute() {
        let words = spoken(&"word ".repeat(150), 150.0, &[]);
        let wpm = analyze(&words).wpm.unwrap();
        assert!((wpm - 150.0).abs() / 150.0 < 0.03, "{wpm}");
    }

    #[test]
    fn fillers_are_found_and_counted_once_each() {
        let answer =
            "so um I think uh the main thing you know was that we had to like, rebuild kind of the core service";
        let report = analyze(&spoken(answer, 140.0, &[]));
        let counts: Vec<(&str, usize)> = report.filler_counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(counts, [("kind of", 1), ("like", 1), ("uh", 1), ("um", 1), ("you know", 1)]);
        assert_eq!(report.fillers, 5);
    }

    #[test]
    fn like_as_a_verb_or_comparison_is_not_a_filler() {
        for sentence in [
            "I like working with data",
            "it looks like a cache problem",
            "things like logging",
            "we would like more tests",
        ] {
            let report = analyze(&spoken(sentence, 140.0, &[]));
            assert_eq!(report.fillers, 0, "{sentence}");
        }
        let report = analyze(&spoken("it was like a total rewrite", 140.0, &[]));
        assert_eq!(report.fillers, 1);
        assert_eq!(analyze(&spoken("what kind of database", 140.0, &[])).fillers, 0);
    }

    #[test]
    fn pauses_are_measured_between_words() {
        let words = spoken("first we measured then after a while we fixed it", 140.0, &[(3, 2500), (6, 900)]);
        let report = analyze(&words);
        assert_eq!(report.long_pauses, 1);
        assert!(report.longest_pause_ms >= 2500);
    }

    #[test]
    fn pace_over_the_voice_does_not_need_the_words_own_times() {
        // Every word at one instant, as whisper times a short turn in the shortened window.
        let bunched: Vec<TimedWord> = "yes I did that".split_whitespace().map(|w| TimedWord::new(w, 1200, 1200)).collect();
        assert_eq!(analyze(&bunched).wpm, None, "no time between the words' own times");
        let over_voice = analyze_spoken(&bunched, 1500);
        assert_eq!((over_voice.speaking_ms, over_voice.wpm), (1500, Some(160.0)));
        assert_eq!(analyze_spoken(&[], 1500), Delivery::default());
    }

    #[test]
    fn no_words_means_no_pace() {
        assert_eq!(analyze(&[]), Delivery::default());
    }
}
