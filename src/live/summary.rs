//! What a session measured, summarised for its report from what the recorder stored: the candidate's delivery
//! (overall and answer by answer) and presence (overall and over time). Both stay apart from the content scores.

use std::collections::BTreeMap;

use candor_interviewer::report::{DeliveryPoint, DeliverySummary, PresencePoint, PresenceSummary};
use candor_signaling::events::Word;
use serde_json::Value;

use super::SessionContext;
use crate::domain::{SampleKind, Speaker};
use crate::store::TurnRecord;

/// A pause between words this long is listed among the longest.
const LISTED_PAUSE_MS: u64 = 1500;
/// Presence is averaged over spans of at least this long, and at most this many spans over a session.
const PRESENCE_SPAN_MS: u64 = 10_000;
const PRESENCE_POINTS: u64 = 60;

/// The session's delivery: rolling figures from the last stored speech sample, the longest pauses and each
/// answer's pace, fillers and long pauses from the stored turns.
pub async fn delivery(ctx: &SessionContext) -> DeliverySummary {
    let samples = ctx.store.metric_samples(ctx.interview, SampleKind::Speech).await.unwrap_or_default();
    let last = samples.iter().rev().filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok()).find(|v| v["wpm"].is_number());
    let turns: Vec<TurnRecord> = match ctx.store.turns(ctx.interview).await {
        Ok(turns) => turns.into_iter().filter(|t| t.speaker == Speaker::Candidate.as_str()).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "turns not read for the report");
            Vec::new()
        }
    };
    let number = |v: &Value, key: &str| v[key].as_f64().map(|x| x as f32);
    DeliverySummary {
        wpm: last.as_ref().and_then(|v| number(v, "wpm")),
        fillers_per_min: last.as_ref().and_then(|v| number(v, "filler_per_min")),
        longest_pauses_ms: longest_pauses(&turns),
        speaking_share: last.as_ref().and_then(|v| number(v, "speaking_share")),
        timeline: turns.iter().filter_map(answer_delivery).collect(),
    }
}

/// The three longest pauses between words of the candidate's turns, of at least `LISTED_PAUSE_MS`.
fn longest_pauses(turns: &[TurnRecord]) -> Vec<u64> {
    let mut pauses: Vec<u64> = turns
        .iter()
        .flat_map(|turn| {
            let words: Vec<Word> = turn.words.as_deref().and_then(|w| serde_json::from_str(w).ok()).unwrap_or_default();
            words.windows(2).map(|w| w[1].start_ms.saturating_sub(w[0].end_ms)).filter(|p| *p >= LISTED_PAUSE_MS).collect::<Vec<_>>()
        })
        .collect();
    pauses.sort_unstable_by(|a, b| b.cmp(a));
    pauses.truncate(3);
    pauses
}

/// One spoken turn's delivery from its stored metrics (`wpm`, `fillers` counts, `long_pauses`); none for a
/// typed answer (stored without them).
fn answer_delivery(turn: &TurnRecord) -> Option<DeliveryPoint> {
    let metrics: Value = serde_json::from_str(turn.metrics.as_deref()?).ok()?;
    let fillers: u64 = metrics["fillers"].as_object()?.values().filter_map(Value::as_u64).sum();
    let minutes = (turn.end_ms - turn.start_ms).max(1000) as f32 / 60_000.0;
    Some(DeliveryPoint {
        t_ms: u64::try_from(turn.start_ms).unwrap_or(0),
        wpm: metrics["wpm"].as_f64().map(|w| w as f32),
        fillers_per_min: fillers as f32 / minutes,
        long_pauses: metrics["long_pauses"].as_u64().unwrap_or(0) as u32,
    })
}

/// What the camera showed over the session, from the stored vision samples; none without any.
pub async fn presence(ctx: &SessionContext) -> Option<PresenceSummary> {
    let samples = ctx.store.metric_samples(ctx.interview, SampleKind::Vision).await.unwrap_or_default();
    let samples: Vec<(u64, Value)> = samples
        .iter()
        .filter_map(|(t, json)| Some((u64::try_from(*t).ok()?, serde_json::from_str::<Value>(json).ok()?)))
        .filter(|(_, v)| !v["face"].is_null())
        .collect();
    presence_of(&samples)
}

/// Presence from per-second vision samples (`face`, `eye_contact`, `expression`) at their times.
fn presence_of(samples: &[(u64, Value)]) -> Option<PresenceSummary> {
    let (first, last) = (samples.first()?.0, samples.last()?.0);
    let with_face: Vec<&Value> = samples.iter().map(|(_, v)| v).filter(|v| v["face"] == true).collect();
    let mut expressions: BTreeMap<String, usize> = BTreeMap::new();
    for v in &with_face {
        let top = v["expression"].as_object().and_then(|e| e.iter().max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap_or(std::cmp::Ordering::Equal)));
        if let Some((expression, _)) = top {
            *expressions.entry(expression.clone()).or_default() += 1;
        }
    }
    let span = PRESENCE_SPAN_MS.max((last - first) / PRESENCE_POINTS + 1);
    let mut spans: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for (t, v) in samples {
        spans.entry((t - first) / span).or_default().push(v);
    }
    Some(PresenceSummary {
        face_visible: with_face.len() as f32 / samples.len() as f32,
        eye_contact: eye_contact(&with_face).unwrap_or(0.0),
        expression: expressions.into_iter().max_by_key(|(_, n)| *n).map(|(e, _)| e),
        timeline: spans
            .into_iter()
            .map(|(index, values)| {
                let faces: Vec<&Value> = values.iter().copied().filter(|v| v["face"] == true).collect();
                PresencePoint {
                    t_ms: first + index * span,
                    face_visible: faces.len() as f32 / values.len() as f32,
                    eye_contact: eye_contact(&faces),
                }
            })
            .collect(),
    })
}

/// The mean share of looking at the camera over samples with a face; `None` without any.
fn eye_contact(with_face: &[&Value]) -> Option<f32> {
    let shares: Vec<f64> = with_face.iter().filter_map(|v| v["eye_contact"].as_f64()).collect();
    (!shares.is_empty()).then(|| (shares.iter().sum::<f64>() / shares.len() as f64) as f32)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn turn(start_ms: i64, end_ms: i64, words: &str, metrics: Option<&str>) -> TurnRecord {
        TurnRecord {
            id: "t".into(),
            question_id: None,
            speaker: "candidate".into(),
            text: String::new(),
            start_ms,
            end_ms,
            interrupted: 0,
            words: Some(words.into()),
            metrics: metrics.map(Into::into),
        }
    }

    #[test]
    fn each_spoken_answer_gets_its_pace_fillers_and_pauses_and_typed_ones_none() {
        let words = r#"[{"w":"so","start_ms":0,"end_ms":300},{"w":"we","start_ms":2400,"end_ms":2600},{"w":"won","start_ms":2700,"end_ms":2900}]"#;
        let turns = [
            turn(5_000, 35_000, words, Some(r#"{"wpm":150.5,"fillers":{"um":2,"you know":1},"long_pauses":1}"#)),
            turn(60_000, 62_000, "[]", Some("{}")),
        ];
        let timeline: Vec<DeliveryPoint> = turns.iter().filter_map(answer_delivery).collect();
        assert_eq!(timeline, vec![DeliveryPoint { t_ms: 5_000, wpm: Some(150.5), fillers_per_min: 6.0, long_pauses: 1 }]);
        assert_eq!(longest_pauses(&turns), vec![2100], "only pauses of 1.5 s or more are listed");
    }

    #[test]
    fn presence_is_kept_over_time_in_spans_and_overall() {
        // 40 s of samples: looking at the camera for the first 20 s, away for 10 s, no face for the last 10.
        let samples: Vec<(u64, Value)> = (0..40)
            .map(|s| {
                let v = match s {
                    0..20 => json!({"face": true, "eye_contact": 1.0, "expression": {"happy": 0.8, "neutral": 0.2}}),
                    20..30 => json!({"face": true, "eye_contact": 0.0, "expression": {"neutral": 0.9}}),
                    _ => json!({"face": false, "eye_contact": null}),
                };
                (3_000 + s * 1000, v)
            })
            .collect();
        let presence = presence_of(&samples).expect("samples");
        assert_eq!(presence.face_visible, 0.75);
        assert!((presence.eye_contact - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(presence.expression.as_deref(), Some("happy"));
        let timeline: Vec<(u64, f32, Option<f32>)> = presence.timeline.iter().map(|p| (p.t_ms, p.face_visible, p.eye_contact)).collect();
        assert_eq!(timeline, vec![(3_000, 1.0, Some(1.0)), (13_000, 1.0, Some(1.0)), (23_000, 1.0, Some(0.0)), (33_000, 0.0, None)]);
        assert_eq!(presence_of(&[]), None);
    }

    #[test]
    fn a_long_session_keeps_at_most_sixty_spans() {
        let samples: Vec<(u64, Value)> = (0..3600).map(|s| (s * 1000, json!({"face": true, "eye_contact": 0.5}))).collect();
        let presence = presence_of(&samples).expect("samples");
        assert!(presence.timeline.len() <= 60, "{} spans", presence.timeline.len());
        assert!(presence.timeline.len() >= 55);
    }
}
