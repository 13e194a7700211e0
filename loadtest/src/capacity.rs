//! Capacity search: full interviews at 1, 2, 3, ... sessions until one step misses the bound, and the largest
//! step that met it. A step meets it when every session connected, the 95th percentile voice-to-voice stayed
//! under the bound, no audio was dropped for a pipeline backlog, and every answer spoken in the window came back
//! as a final transcript. The steps are written as JSON, a Markdown table and an SVG chart.
//!
//! "Per core" means something only when the server has a known number of cores to itself: pin it
//! (`taskset -c 0 candor serve`) and the load generator elsewhere (`taskset -c 1 candor-loadtest ...`).

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;
use serde_json::{Value, json};

use crate::latency::quantile;
use crate::load::{Load, LoadError, Report, run};

/// One step of the search: a run at `sessions`, and why it missed the bound if it did.
#[derive(Debug, Clone)]
pub struct Step {
    pub sessions: usize,
    pub report: Report,
    pub p95_ms: Option<f64>,
    /// Final transcripts the answers spoken in the window should have produced.
    pub expected_transcripts: usize,
    pub misses: Vec<String>,
}

impl Step {
    pub fn passed(&self) -> bool {
        self.misses.is_empty()
    }

    fn judge(sessions: usize, report: Report, p95_bound: Duration, expected_transcripts: usize) -> Self {
        let p95_ms = quantile(&report.voice_to_voice, 0.95).map(|d| d.as_secs_f64() * 1000.0);
        let bound_ms = p95_bound.as_secs_f64() * 1000.0;
        let mut misses = Vec::new();
        if report.connected < sessions {
            misses.push(format!("{} of {sessions} sessions connected", report.connected));
        }
        match p95_ms {
            Some(p95) if p95 > bound_ms => misses.push(format!("p95 voice-to-voice {p95:.0} ms > {bound_ms:.0} ms")),
            None => misses.push("no reply was heard".into()),
            Some(_) => {}
        }
        if report.dropped_audio_ms > 0.0 {
            misses.push(format!("{:.0} ms of audio dropped (pipeline backlog)", report.dropped_audio_ms));
        }
        if report.transcripts < expected_transcripts {
            misses.push(format!("{} of {expected_transcripts} final transcripts", report.transcripts));
        }
        // A reply that never came would otherwise leave the percentiles looking better than they were.
        if report.voice_to_voice.len() < expected_transcripts {
            misses.push(format!("{} of {expected_transcripts} replies heard", report.voice_to_voice.len()));
        }
        Self { sessions, report, p95_ms, expected_transcripts, misses }
    }

    fn to_json(&self) -> Value {
        json!({"sessions": self.sessions, "passed": self.passed(), "p95_ms": self.p95_ms,
               "expected_transcripts": self.expected_transcripts, "misses": self.misses, "report": self.report.to_json()})
    }
}

/// Runs steps of 1, 2, ... up to `max_sessions` sessions (each `load.duration` long), stopping after the first
/// step that misses the bound. `on_step` sees each step as it finishes.
pub async fn search(
    load: &Load,
    max_sessions: usize,
    p95_bound: Duration,
    mut on_step: impl FnMut(&Step),
) -> Result<Vec<Step>, LoadError> {
    let mut steps = Vec::new();
    for sessions in 1..=max_sessions {
        let step_load = Load { sessions, answer: load.answer.clone(), picture: load.picture.clone(), ..*load };
        let report = run(&step_load).await?;
        let step = Step::judge(sessions, report, p95_bound, step_load.expected_answers());
        on_step(&step);
        let passed = step.passed();
        steps.push(step);
        if !passed {
            break;
        }
    }
    Ok(steps)
}

/// The largest number of sessions that met the bound, with every smaller step meeting it too.
pub fn capacity(steps: &[Step]) -> usize {
    steps.iter().take_while(|s| s.passed()).last().map_or(0, |s| s.sessions)
}

pub fn to_json(steps: &[Step], p95_bound: Duration, cores: f64) -> Value {
    json!({
        "p95_bound_ms": p95_bound.as_secs_f64() * 1000.0,
        "server_cores": cores,
        "capacity_sessions": capacity(steps),
        "capacity_per_core": capacity(steps) as f64 / cores,
        "steps": steps.iter().map(Step::to_json).collect::<Vec<_>>(),
    })
}

/// A Markdown summary: the capacity, then one row per step.
pub fn markdown(steps: &[Step], p95_bound: Duration, cores: f64) -> String {
    let found = capacity(steps);
    let mut out = format!(
        "Capacity: **{found} full interviews** on {cores} server core(s) ({:.1} per core) at p95 voice-to-voice under {} ms.\n\n",
        found as f64 / cores,
        p95_bound.as_millis()
    );
    out.push_str(
        "| sessions | p50 ms | p95 ms | server cores busy | memory MB | live heap MB | finals | dropped audio ms | result |\n",
    );
    out.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for step in steps {
        let r = &step.report;
        let p50 = quantile(&r.voice_to_voice, 0.5).map_or("-".into(), |d| format!("{:.0}", d.as_secs_f64() * 1000.0));
        let p95 = step.p95_ms.map_or("-".into(), |v| format!("{v:.0}"));
        let result = if step.passed() { "met".to_string() } else { step.misses.join("; ") };
        out.push_str(&format!(
            "| {} | {p50} | {p95} | {:.2} | {:.0} | {:.0} | {}/{} | {:.0} | {result} |\n",
            step.sessions,
            r.cores_used,
            r.server_memory_mb,
            r.server_heap_mb,
            r.transcripts,
            step.expected_transcripts,
            r.dropped_audio_ms
        ));
    }
    out
}

/// Voice-to-voice (p50, p95) and the server's busy cores against sessions, with the bound drawn in.
pub fn chart(steps: &[Step], p95_bound: Duration, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let ms = |q: f64, step: &Step| quantile(&step.report.voice_to_voice, q).map(|d| d.as_secs_f64() * 1000.0);
    let bound_ms = p95_bound.as_secs_f64() * 1000.0;
    let max_sessions = steps.iter().map(|s| s.sessions).max().unwrap_or(1) as f64;
    let top_ms = steps.iter().filter_map(|s| ms(0.95, s)).fold(bound_ms, f64::max) * 1.1;
    let top_cores = steps.iter().map(|s| s.report.cores_used).fold(1.0, f64::max) * 1.1;

    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Candor capacity: voice-to-voice and CPU against sessions", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(64)
        .build_cartesian_2d(0.5..max_sessions + 0.5, 0.0..top_ms)?
        .set_secondary_coord(0.5..max_sessions + 0.5, 0.0..top_cores);
    chart
        .configure_mesh()
        .x_desc("sessions")
        .y_desc("voice-to-voice (ms)")
        .x_labels(steps.len().max(2))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    chart.configure_secondary_axes().y_desc("server cores busy").y_label_formatter(&|y| format!("{y:.1}")).draw()?;

    let series = |q: f64| steps.iter().filter_map(move |s| Some((s.sessions as f64, ms(q, s)?))).collect::<Vec<_>>();
    let (p50, p95) = (series(0.5), series(0.95));
    chart
        .draw_series(LineSeries::new(p50.clone(), BLUE.stroke_width(2)))?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart.draw_series(p50.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
    chart
        .draw_series(LineSeries::new(p95.clone(), RED.stroke_width(2)))?
        .label("p95")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart.draw_series(p95.iter().map(|&p| Circle::new(p, 3, RED.filled())))?;
    chart
        .draw_series(LineSeries::new([(0.5, bound_ms), (max_sessions + 0.5, bound_ms)], RED.mix(0.4)))?
        .label("p95 bound")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.4)));
    let cores: Vec<(f64, f64)> = steps.iter().map(|s| (s.sessions as f64, s.report.cores_used)).collect();
    chart
        .draw_secondary_series(LineSeries::new(cores, GREEN.stroke_width(2)))?
        .label("server cores busy")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sessions: usize, replies_ms: &[u64], transcripts: usize, dropped_audio_ms: f64) -> Report {
        Report {
            sessions,
            connected: sessions,
            failures: Vec::new(),
            seconds: 40.0,
            server_cpu_seconds: 10.0 * sessions as f64,
            cores_used: 0.25 * sessions as f64,
            server_memory_mb: 400.0 + 15.0 * sessions as f64,
            server_heap_mb: 300.0 + 10.0 * sessions as f64,
            transcripts,
            face_seconds: 40 * sessions,
            vision_batch_frames: None,
            latency_ms: Default::default(),
            voice_to_voice: replies_ms.iter().map(|&ms| Duration::from_millis(ms)).collect(),
            stale_video_frames: 0.0,
            dropped_audio_ms,
        }
    }

    #[test]
    fn the_capacity_is_the_last_step_of_an_unbroken_run_that_met_the_bound() {
        let bound = Duration::from_millis(1200);
        let steps = vec![
            Step::judge(1, report(1, &[700, 800, 900], 2, 0.0), bound, 2),
            Step::judge(2, report(2, &[800, 900, 1100, 1150], 4, 0.0), bound, 4),
            Step::judge(3, report(3, &[900, 1000, 1300, 1900], 6, 0.0), bound, 6),
        ];
        assert!(steps[0].passed() && steps[1].passed());
        assert!(steps[2].misses[0].contains("p95"), "{:?}", steps[2].misses);
        assert_eq!(capacity(&steps), 2);
        let table = markdown(&steps, bound, 1.0);
        assert!(table.contains("**2 full interviews**") && table.lines().count() == 7, "{table}");
        assert_eq!(to_json(&steps, bound, 1.0)["capacity_per_core"], 2.0);
    }

    #[test]
    fn a_backlog_or_a_lost_transcript_misses_the_bound_even_when_replies_are_fast() {
        let bound = Duration::from_millis(1200);
        let backlog = Step::judge(4, report(4, &[700, 800], 8, 320.0), bound, 8);
        assert!(backlog.misses.iter().any(|m| m.contains("dropped")), "{:?}", backlog.misses);
        let lost = Step::judge(4, report(4, &[700, 800], 7, 0.0), bound, 8);
        assert!(lost.misses.iter().any(|m| m.contains("7 of 8")), "{:?}", lost.misses);
        let silent = Step::judge(1, report(1, &[], 2, 0.0), bound, 2);
        assert!(!silent.passed(), "no reply heard is no capacity");
    }

    #[test]
    fn the_chart_is_an_svg_with_both_axes() {
        let bound = Duration::from_millis(1200);
        let steps: Vec<Step> = (1..=3)
            .map(|n| Step::judge(n, report(n, &[600 + 100 * n as u64, 800 + 200 * n as u64], 2 * n, 0.0), bound, 2 * n))
            .collect();
        let path = std::env::temp_dir().join(format!("candor-capacity-{}.svg", std::process::id()));
        chart(&steps, bound, &path).expect("draws");
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg") && svg.contains("voice-to-voice (ms)") && svg.contains("server cores busy"));
    }
}
