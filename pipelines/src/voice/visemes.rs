//! Visemes for avatar clients: the mouth shapes of what the voice says, over time. Piper's model gives no
//! phoneme durations, so a sentence's audio length is spread over its phonemes by typical relative lengths
//! (vowels longest, a pause at each punctuation mark). The set is the common 15-shape one (as in MPEG-4 and
//! Oculus lip sync): sil PP FF TH DD kk CH SS nn RR aa E I O U.

/// Relative lengths: a consonant is the unit.
const CONSONANT: f32 = 1.0;
const VOWEL: f32 = 1.6;
const LONG: f32 = 0.8; // added by the length mark "ː"
const PAUSE: f32 = 3.0; // a clause's punctuation

/// The viseme of one IPA symbol as espeak-ng writes it for English, with its relative length; `None` for
/// symbols without a mouth shape of their own (stress marks, "h", spaces).
fn viseme(symbol: char) -> Option<(&'static str, f32)> {
    let shape = match symbol {
        'p' | 'b' | 'm' => "PP",
        'f' | 'v' => "FF",
        'θ' | 'ð' => "TH",
        't' | 'd' | 'ɾ' => "DD",
        'k' | 'g' | 'ɡ' | 'ŋ' | 'x' => "kk",
        'ʃ' | 'ʒ' | 'ʧ' | 'ʤ' => "CH",
        's' | 'z' => "SS",
        'n' | 'l' | 'ɫ' => "nn",
        'ɹ' | 'r' => "RR",
        'ɑ' | 'a' | 'æ' | 'ʌ' | 'ɐ' => "aa",
        'ɛ' | 'e' | 'ə' | 'ɚ' | 'ɜ' | 'ɝ' => "E",
        'ɪ' | 'i' | 'ᵻ' | 'j' => "I",
        'ɔ' | 'o' | 'ɒ' => "O",
        'ʊ' | 'u' | 'w' => "U",
        ',' | '.' | '!' | '?' | ';' | ':' => "sil",
        _ => return None,
    };
    let length = match shape {
        "sil" => PAUSE,
        "aa" | "E" | "I" | "O" | "U" if symbol != 'j' && symbol != 'w' => VOWEL,
        _ => CONSONANT,
    };
    Some((shape, length))
}

/// `(t_ms, viseme)` frames for `phonemes` spoken over `duration_ms`, starting at 0 with "sil" and ending with
/// "sil" when the speech ends; a shape repeated back to back is one frame.
pub fn visemes(phonemes: &str, duration_ms: u64) -> Vec<(u64, &'static str)> {
    let mut shapes: Vec<(&'static str, f32)> = Vec::new();
    for symbol in phonemes.chars() {
        if symbol == 'ː' {
            if let Some(last) = shapes.last_mut() {
                last.1 += LONG;
            }
        } else if let Some(shape) = viseme(symbol) {
            shapes.push(shape);
        }
    }
    let total: f32 = shapes.iter().map(|(_, length)| length).sum();
    let mut frames = vec![(0, "sil")];
    if total <= 0.0 {
        return frames;
    }
    let mut elapsed = 0.0;
    for (shape, length) in shapes {
        let t_ms = (elapsed / total * duration_ms as f32).round() as u64;
        match frames.last_mut() {
            Some(last) if last.1 == shape => {}
            Some(last) if last.0 == t_ms => *last = (t_ms, shape),
            _ => frames.push((t_ms, shape)),
        }
        elapsed += length;
    }
    if frames.last().is_some_and(|last| last.1 != "sil") {
        frames.push((duration_ms, "sil"));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lips_close_for_m_and_the_frames_span_the_speech() {
        // espeak-ng's IPA for "Welcome, Tom."
        let frames = visemes("wˈɛlkʌm, tˈɑːm.", 1200);
        assert_eq!(frames.first(), Some(&(0, "U")), "the first shape starts at once");
        assert_eq!(frames.last().map(|f| f.1), Some("sil"));
        assert!(frames.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1), "{frames:?}");
        assert!(frames.iter().all(|&(t, _)| t <= 1200));
        let shapes: Vec<&str> = frames.iter().map(|f| f.1).collect();
        assert_eq!(shapes, ["U", "E", "nn", "kk", "aa", "PP", "sil", "DD", "aa", "PP", "sil"]);
        // The long vowel of "Tom" lasts longer than the short one of "wel-".
        let span = |shape_index: usize| frames[shape_index + 1].0 - frames[shape_index].0;
        assert!(span(8) > span(1), "{frames:?}");
    }

    #[test]
    fn the_affricates_and_dentals_of_english_have_their_shapes() {
        let shapes = |ipa: &str| visemes(ipa, 1000).into_iter().map(|f| f.1).collect::<Vec<_>>();
        assert!(shapes("dʒˈʌmp").contains(&"CH") && shapes("tʃˈiːp").contains(&"CH"));
        assert!(shapes("ðə θˈɪŋ").starts_with(&["TH"]));
        assert!(shapes("vˈɪʒən").starts_with(&["FF", "I", "CH"]));
        assert_eq!(visemes("", 500), [(0, "sil")], "nothing said: the mouth stays shut");
    }
}
