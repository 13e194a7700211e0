//! Words as text: comparing transcripts (word error rate) and counting what was said (pace).
//!
//! Whisper writes what it hears in written form ("10 meters", "40%", "Mr.", "ill-disposed") while references
//! and speakers use spoken forms ("ten meters", "forty percent", "mister", "ill disposed"). Both sides are brought
//! to one form before comparing, much as Whisper's own English normaliser does: lower case, no punctuation,
//! hyphens split, common abbreviations spelled out, and every number, written in digits or in words, as its
//! digits one by one ("29340" and "two nine three four zero" both become `2 9 3 4 0`). Pace counts words as
//! spoken: "40%" is two words, "2019" two, "29340" five.

/// Number words and their values; "hundred", "thousand" and "million" scale what came before.
const UNITS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
];
const TENS: &[&str] = &["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const SCALES: &[(&str, u64)] = &[("hundred", 100), ("thousand", 1_000), ("million", 1_000_000)];
const ABBREVIATIONS: &[(&str, &str)] =
    &[("mr", "mister"), ("mrs", "missus"), ("dr", "doctor"), ("vs", "versus"), ("ok", "okay"), ("alright", "all right")];

/// The comparable words of a text: lower case, punctuation and hyphens gone, abbreviations spelled out, numbers
/// as single digits.
pub fn comparable_words(text: &str) -> Vec<String> {
    let spaced: String = text
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '-' | '\u{2010}'..='\u{2015}' | '/' => " ".to_string(),
            '%' => " percent ".to_string(),
            _ => c.to_string(),
        })
        .collect();
    let mut words: Vec<String> = Vec::new();
    for raw in spaced.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if let Some((_, long)) = ABBREVIATIONS.iter().find(|(short, _)| *short == word) {
            words.extend(long.split(' ').map(String::from));
            continue;
        }
        if word.is_empty() {
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') && word.chars().any(|c| c.is_ascii_digit()) {
            words.extend(word.chars().filter(char::is_ascii_digit).map(String::from));
        } else {
            words.push(word.to_string());
        }
    }
    spell_numbers_as_digits(words)
}

/// Runs of number words become digits: "twenty nine" 2 9, "two nine three" 2 9 3, "one hundred five" 1 0 5.
fn spell_numbers_as_digits(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut number: Option<(u64, u64)> = None; // (total so far, current group below a thousand)
    let mut last_was_unit = false;
    let flush = |number: &mut Option<(u64, u64)>, out: &mut Vec<String>| {
        if let Some((total, group)) = number.take() {
            out.extend((total + group).to_string().chars().map(String::from));
        }
    };
    for word in words {
        if let Some(value) = UNITS.iter().position(|u| *u == word) {
            // A unit after a unit or a teen starts a new number ("two nine"); after a ten it adds ("twenty nine").
            if last_was_unit {
                flush(&mut number, &mut out);
            }
            let (total, group) = number.unwrap_or((0, 0));
            number = Some((total, group + value as u64));
            last_was_unit = true;
        } else if let Some(value) = TENS.iter().position(|t| !t.is_empty() && *t == word) {
            if number.is_some_and(|(_, group)| group % 100 != 0) {
                flush(&mut number, &mut out);
            }
            let (total, group) = number.unwrap_or((0, 0));
            number = Some((total, group + 10 * value as u64));
            last_was_unit = false;
        } else if let Some((_, scale)) = SCALES.iter().find(|(s, _)| *s == word).filter(|_| number.is_some()) {
            let (total, group) = number.unwrap_or((0, 1));
            number = Some(if *scale == 100 { (total, group.max(1) * 100) } else { (total + group.max(1) * scale, 0) });
            last_was_unit = false;
        } else {
            flush(&mut number, &mut out);
            last_was_unit = false;
            out.push(word);
        }
    }
    flush(&mut number, &mut out);
    out
}

/// Word error rate of `hypothesis` against `reference`: edits (substitutions, insertions, deletions) per
/// reference word, on comparable words.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f32 {
    let (r, h) = (comparable_words(reference), comparable_words(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    prefix_edit_distances(&r, &h)[h.len()] as f32 / r.len() as f32
}

/// Word edit distances between all of `said` and each prefix of `heard`: element j is the distance to the first
/// j words heard.
pub fn prefix_edit_distances(said: &[String], heard: &[String]) -> Vec<usize> {
    let mut previous: Vec<usize> = (0..=heard.len()).collect();
    for (i, sw) in said.iter().enumerate() {
        let mut current = vec![i + 1; heard.len() + 1];
        for (j, hw) in heard.iter().enumerate() {
            let substitution = previous[j] + usize::from(sw != hw);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous
}

/// How many words a written word stands for when it is said: "40%" two (forty percent), "2019" two (twenty
/// nineteen), "29340" five (twenty-nine thousand three hundred forty), "3.5" three, "ill-disposed" two;
/// anything else one.
pub fn spoken_length(word: &str) -> usize {
    if word.contains('-') {
        return word.split('-').filter(|part| part.chars().any(char::is_alphanumeric)).map(spoken_length).sum();
    }
    let digits: String = word.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
    let digits = digits.trim_matches('.');
    if digits.is_empty() {
        return 1;
    }
    let symbols = word.chars().filter(|c| matches!(c, '%' | '$' | '€' | '£')).count();
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction_words = if fraction.is_empty() { 0 } else { 1 + fraction.len() };
    let whole_words = match whole.parse::<u64>() {
        Ok(year) if whole.len() == 4 && (1100..2100).contains(&year) && year % 100 != 0 => 2,
        Ok(n) => number_length(n),
        Err(_) => whole.len(), // too long to be a quantity: read digit by digit
    };
    whole_words + fraction_words + symbols
}

/// Words in the English reading of `n` ("twenty-nine" is one word, as written).
fn number_length(n: u64) -> usize {
    fn below_thousand(n: u64) -> usize {
        let hundreds = if n >= 100 { 2 } else { 0 };
        hundreds + usize::from(!n.is_multiple_of(100) || n == 0)
    }
    if n < 1000 {
        return below_thousand(n);
    }
    let mut words = 0;
    let mut rest = n;
    for scale in [1_000_000_000_000, 1_000_000_000, 1_000_000, 1_000] {
        if rest >= scale {
            words += below_thousand(rest / scale) + 1;
            rest %= scale;
        }
    }
    words + if rest > 0 { below_thousand(rest) } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_spoken_forms_compare_equal() {
        for (spoken, written) in [
            ("go forward ten meters", "Go forward 10 meters."),
            ("two nine three four zero", "29340."),
            ("and mister john dashwood", "And Mr. John Dashwood"),
            ("he was not an ill disposed young man", "He was not an ill-disposed young man."),
            ("a forty percent drop", "a 40% drop"),
            ("twenty nine people in nineteen eighty four", "29 people in 1984"),
            ("three hundred five", "305"),
            ("all right thanks", "Alright, thanks."),
        ] {
            assert_eq!(comparable_words(spoken), comparable_words(written), "{spoken} / {written}");
        }
    }

    #[test]
    fn word_error_rate_counts_edits_per_reference_word() {
        assert_eq!(word_error_rate("the cat sat", "The cat sat."), 0.0);
        assert!((word_error_rate("the cat sat down", "the cat sat") - 0.25).abs() < 1e-6);
        assert!((word_error_rate("a b", "x b c") - 1.0).abs() < 1e-6);
        assert_eq!(word_error_rate("go forward ten meters", "Go forward 10 meters."), 0.0);
    }

    #[test]
    fn numbers_count_as_the_words_they_are_read_as() {
        assert_eq!(spoken_length("word"), 1);
        assert_eq!(spoken_length("40%"), 2);
        assert_eq!(spoken_length("40%,"), 2);
        assert_eq!(spoken_length("2019"), 2);
        assert_eq!(spoken_length("10"), 1);
        assert_eq!(spoken_length("305"), 3);
        assert_eq!(spoken_length("29340"), 5);
        assert_eq!(spoken_length("$5"), 2);
        assert_eq!(spoken_length("3.5"), 3);
        assert_eq!(spoken_length("1,000"), 2);
        assert_eq!(spoken_length("ill-disposed"), 2);
        assert_eq!(spoken_length("-"), 0);
    }
}
