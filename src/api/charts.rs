//! The report's charts, drawn on the server as SVG by `plotters`: they need no script in the page, look the same
//! in every browser, and print. Each function draws one chart from a report (or the history of reports), or
//! returns `None` when there is nothing to draw.

use candor_interviewer::report::{PastScores, Report};
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Which chart of a report: the path segment of `GET /interviews/{id}/report/charts/{chart}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportChart {
    /// The content scores per dimension.
    Scores,
    /// Pace, fillers and long pauses answer by answer.
    Delivery,
    /// Face in view and eye contact over the session.
    Presence,
    /// The candidate's scores across their interviews up to this one (drawn by `progress`).
    Progress,
}

impl ReportChart {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "scores" => Some(Self::Scores),
            "delivery" => Some(Self::Delivery),
            "presence" => Some(Self::Presence),
            "progress" => Some(Self::Progress),
            _ => None,
        }
    }

    /// The chart as SVG, or `None` when the report has no data for it. `history`: the candidate's reports up to
    /// this one, oldest first (only `Progress` reads it).
    pub fn draw(self, report: &Report, history: &[PastScores]) -> Result<Option<String>, ChartError> {
        match self {
            Self::Scores => scores(report),
            Self::Delivery => delivery(report),
            Self::Presence => presence(report),
            Self::Progress => progress(history),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("chart not drawn: {0}")]
pub struct ChartError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Self(e.to_string())
    }
}

/// Narrow enough that the labels stay readable when a phone scales the chart down.
const WIDTH: u32 = 600;
const FONT: &str = "sans-serif";
/// A calm palette that stays apart in grey print: blue, teal, amber, purple, slate.
const BLUE: RGBColor = RGBColor(37, 99, 235);
const TEAL: RGBColor = RGBColor(13, 148, 136);
const AMBER: RGBColor = RGBColor(217, 119, 6);
const PURPLE: RGBColor = RGBColor(124, 58, 237);
const SLATE: RGBColor = RGBColor(100, 116, 139);
const GRID: RGBColor = RGBColor(226, 232, 240);
const TEXT: RGBColor = RGBColor(30, 41, 59);
/// The pace band that listeners find comfortable, in words a minute.
const COMFORTABLE_WPM: (f32, f32) = (120.0, 160.0);

fn svg(
    height: u32,
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(root.clone())?;
        root.present()?;
    }
    Ok(out)
}

fn label(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&TEXT)
}

/// The grid, axes and labels every chart shares: one light line between labels, quiet colours.
fn calm<'m, 'a, 'b, X: Ranged, Y: Ranged>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, SVGBackend<'a>>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, SVGBackend<'a>> {
    mesh.max_light_lines(1).light_line_style(GRID).bold_line_style(GRID).axis_style(SLATE).label_style(label(15))
}

/// Minutes into the session, for time axes.
fn minutes(t_ms: u64) -> f32 {
    t_ms as f32 / 60_000.0
}

/// Horizontal bars, 0-100, one per content dimension, with the overall score as the first bar.
fn scores(report: &Report) -> Result<Option<String>, ChartError> {
    if report.dimensions.is_empty() {
        return Ok(None);
    }
    let mut bars: Vec<(String, u8, RGBColor)> = vec![("Overall".to_string(), report.overall, BLUE)];
    bars.extend(report.dimensions.iter().map(|d| (d.name.clone(), d.score, TEAL)));
    let n = bars.len() as u32;
    let chart = svg(60 + 44 * n, |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .x_label_area_size(28)
            .y_label_area_size(165)
            .build_cartesian_2d(0u32..112u32, (0u32..n - 1).into_segmented())?;
        calm(&mut chart.configure_mesh())
            .disable_y_mesh()
            .x_labels(7)
            .x_label_formatter(&|v| if *v <= 100 { v.to_string() } else { String::new() })
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => {
                    n.checked_sub(1 + *i).and_then(|i| bars.get(i as usize)).map(|b| b.0.clone()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .draw()?;
        // The first bar on top.
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, score, color))| {
            let i = n - 1 - i as u32;
            let mut bar = Rectangle::new(
                [(0, SegmentValue::Exact(i)), (u32::from(*score), SegmentValue::Exact(i + 1))],
                color.filled(),
            );
            bar.set_margin(7, 7, 0, 0);
            bar
        }))?;
        let value = label(15).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, score, _))| {
            Text::new(format!(" {score}"), (u32::from(*score), SegmentValue::CenterOf(n - 1 - i as u32)), value.clone())
        }))?;
        Ok(())
    })?;
    Ok(Some(chart))
}

/// Two panels over the session's minutes: each answer's pace against the comfortable band, and its fillers a
/// minute with its long pauses.
fn delivery(report: &Report) -> Result<Option<String>, ChartError> {
    let points = &report.delivery.timeline;
    if points.is_empty() {
        return Ok(None);
    }
    let end = points.iter().map(|p| minutes(p.t_ms)).fold(0.0, f32::max) + 1.0;
    let top_wpm = points.iter().filter_map(|p| p.wpm).fold(COMFORTABLE_WPM.1 + 40.0, f32::max);
    let top_fillers = points.iter().map(|p| p.fillers_per_min).fold(4.0, f32::max) * 1.15;
    let top_pauses = points.iter().map(|p| p.long_pauses).max().unwrap_or(0).max(2) as f32;
    let chart = svg(440, |root| {
        let (upper, lower) = root.split_vertically(220);
        let mut pace = ChartBuilder::on(&upper)
            .margin(16)
            .caption("Pace, words a minute (band: 120-160)", label(17))
            .x_label_area_size(24)
            .y_label_area_size(50)
            .build_cartesian_2d(0f32..end, 0f32..top_wpm)?;
        calm(&mut pace.configure_mesh()).x_labels(8).y_labels(5).y_label_formatter(&|v| format!("{v:.0}")).draw()?;
        pace.draw_series([Rectangle::new(
            [(0.0, COMFORTABLE_WPM.0), (end, COMFORTABLE_WPM.1)],
            TEAL.mix(0.12).filled(),
        )])?;
        let wpm: Vec<(f32, f32)> = points.iter().filter_map(|p| Some((minutes(p.t_ms), p.wpm?))).collect();
        pace.draw_series(LineSeries::new(wpm.clone(), BLUE.stroke_width(2)))?;
        pace.draw_series(wpm.iter().map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())))?;

        let mut fillers = ChartBuilder::on(&lower)
            .margin(16)
            .caption("Fillers a minute (bars) and long pauses (diamonds)", label(17))
            .x_label_area_size(40)
            .y_label_area_size(50)
            .right_y_label_area_size(40)
            .build_cartesian_2d(0f32..end, 0f32..top_fillers)?
            .set_secondary_coord(0f32..end, 0f32..top_pauses + 1.0);
        calm(&mut fillers.configure_mesh())
            .x_labels(8)
            .y_labels(4)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("minutes into the interview")
            .draw()?;
        fillers
            .configure_secondary_axes()
            .axis_style(SLATE)
            .label_style(label(15))
            .y_labels(3)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let width = (end / 80.0).max(0.08);
        fillers.draw_series(points.iter().map(|p| {
            let x = minutes(p.t_ms);
            Rectangle::new([(x - width, 0.0), (x + width, p.fillers_per_min)], AMBER.filled())
        }))?;
        fillers.draw_secondary_series(
            points
                .iter()
                .filter(|p| p.long_pauses > 0)
                .map(|p| Polygon::new(diamond(minutes(p.t_ms), p.long_pauses as f32, width, 0.25), PURPLE.filled())),
        )?;
        Ok(())
    })?;
    Ok(Some(chart))
}

fn diamond(x: f32, y: f32, half_width: f32, half_height: f32) -> Vec<(f32, f32)> {
    vec![(x - half_width, y), (x, y + half_height), (x + half_width, y), (x, y - half_height)]
}

/// Face in view and eye contact, in percent, over the session's minutes.
fn presence(report: &Report) -> Result<Option<String>, ChartError> {
    let Some(points) = report.presence.as_ref().map(|p| &p.timeline).filter(|t| !t.is_empty()) else { return Ok(None) };
    let end = points.iter().map(|p| minutes(p.t_ms)).fold(0.0, f32::max) + 0.5;
    let chart = svg(260, |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f32..end, 0f32..100f32)?;
        calm(&mut chart.configure_mesh())
            .x_labels(8)
            .y_labels(5)
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .x_desc("minutes into the interview")
            .draw()?;
        let face: Vec<(f32, f32)> = points.iter().map(|p| (minutes(p.t_ms), p.face_visible * 100.0)).collect();
        chart
            .draw_series(LineSeries::new(face, SLATE.stroke_width(2)))?
            .label("face in view")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], SLATE.stroke_width(2)));
        let eyes: Vec<(f32, f32)> =
            points.iter().filter_map(|p| Some((minutes(p.t_ms), p.eye_contact? * 100.0))).collect();
        chart
            .draw_series(LineSeries::new(eyes, BLUE.stroke_width(2)))?
            .label("eye contact")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .label_font(label(15))
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()?;
        Ok(())
    })?;
    Ok(Some(chart))
}

/// The overall score and each dimension across a candidate's interviews, oldest first: none before two.
pub fn progress(history: &[PastScores]) -> Result<Option<String>, ChartError> {
    if history.len() < 2 {
        return Ok(None);
    }
    let n = history.len();
    let mut dimensions: Vec<&String> = history.iter().flat_map(|h| h.dimensions.keys()).collect();
    dimensions.sort();
    dimensions.dedup();
    let chart = svg(300, |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(40)
            .build_cartesian_2d(0.8f32..n as f32 + 0.2, 0f32..100f32)?;
        calm(&mut chart.configure_mesh())
            .x_labels(n.min(12))
            .x_label_formatter(&|v| if (v - v.round()).abs() < 0.01 { format!("#{v:.0}") } else { String::new() })
            .y_labels(5)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("interview")
            .draw()?;
        for (dimension, color) in dimensions.iter().zip([TEAL, AMBER, PURPLE, SLATE].into_iter().cycle()) {
            let line: Vec<(f32, f32)> = history
                .iter()
                .enumerate()
                .filter_map(|(i, h)| Some((i as f32 + 1.0, f32::from(*h.dimensions.get(*dimension)?))))
                .collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(1)))?
                .label(dimension.replace('_', " "))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(1)));
        }
        let overall: Vec<(f32, f32)> =
            history.iter().enumerate().map(|(i, h)| (i as f32 + 1.0, f32::from(h.overall))).collect();
        chart
            .draw_series(LineSeries::new(overall.clone(), BLUE.stroke_width(3)))?
            .label("overall")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(3)));
        chart.draw_series(overall.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
        chart
            .configure_series_labels()
            .label_font(label(15))
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        Ok(())
    })?;
    Ok(Some(chart))
}

#[cfg(test)]
mod tests {
    use candor_interviewer::grade::Dimension;
    use candor_interviewer::report::{Coverage, DeliveryPoint, DimensionScore, PresencePoint, PresenceSummary};

    use super::*;

    fn report() -> Report {
        let dimensions = Dimension::ALL
            .iter()
            .zip([72, 55, 80, 40])
            .map(|(d, score)| DimensionScore { dimension: *d, name: d.as_str().replace('_', " "), score })
            .collect();
        Report {
            overall: 62,
            complete: true,
            dimensions,
            rounds: Vec::new(),
            questions: Vec::new(),
            coverage: Coverage { competencies: Vec::new(), job_skills: Vec::new(), job_duties: Vec::new() },
            delivery: Default::default(),
            presence: None,
            strengths: Vec::new(),
            improvements: Vec::new(),
            learning_path: Vec::new(),
            progress: None,
            summary: String::new(),
        }
    }

    /// The text labels, in the order drawn.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split("</text>").next()?.trim().to_string()))
            .collect()
    }

    /// The bars' widths in the order drawn: filled rects taller than a grid line.
    fn bar_widths(svg: &str) -> Vec<f32> {
        svg.split("<rect")
            .skip(1)
            .filter(|r| r.contains(r##"fill="#0D9488""##) || r.contains(r##"fill="#2563EB""##))
            .filter_map(|r| r.split("width=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn score_bars_are_as_long_as_the_scores_and_labelled() {
        let svg = ReportChart::Scores.draw(&report(), &[]).unwrap().expect("a chart");
        assert!(svg.starts_with("<svg") && svg.contains("viewBox"), "{svg}");
        for name in ["Overall", "technical depth", "communication", "structure", "impact"] {
            assert!(texts(&svg).iter().any(|t| t == name), "{name} labelled");
        }
        let widths = bar_widths(&svg);
        assert_eq!(widths.len(), 5, "{widths:?}");
        // Widths are proportional to 62, 72, 55, 80, 40.
        let unit = widths[3] / 80.0;
        for (width, score) in widths.iter().zip([62.0, 72.0, 55.0, 80.0, 40.0]) {
            assert!((width / unit - score).abs() < 1.5, "{widths:?}");
        }
        assert_eq!(ReportChart::Scores.draw(&Report { dimensions: Vec::new(), ..report() }, &[]).unwrap(), None);
    }

    #[test]
    fn delivery_and_presence_are_drawn_only_from_their_timelines() {
        let mut r = report();
        assert_eq!(ReportChart::Delivery.draw(&r, &[]).unwrap(), None);
        assert_eq!(ReportChart::Presence.draw(&r, &[]).unwrap(), None);
        r.delivery.timeline = vec![
            DeliveryPoint { t_ms: 20_000, wpm: Some(150.0), fillers_per_min: 2.0, long_pauses: 0 },
            DeliveryPoint { t_ms: 95_000, wpm: Some(190.0), fillers_per_min: 6.5, long_pauses: 2 },
            DeliveryPoint { t_ms: 160_000, wpm: None, fillers_per_min: 0.0, long_pauses: 0 },
        ];
        let svg = ReportChart::Delivery.draw(&r, &[]).unwrap().expect("a chart");
        assert_eq!(svg.matches("<circle").count(), 2, "a point per answer with a pace");
        assert_eq!(svg.matches(r##"fill="#D97706""##).count(), 3, "a bar per answer");
        assert_eq!(svg.matches("<polygon").count(), 1, "a diamond per answer with long pauses");
        r.presence = Some(PresenceSummary {
            face_visible: 0.9,
            eye_contact: 0.6,
            expression: None,
            timeline: vec![
                PresencePoint { t_ms: 0, face_visible: 1.0, eye_contact: Some(0.7) },
                PresencePoint { t_ms: 10_000, face_visible: 0.8, eye_contact: Some(0.5) },
                PresencePoint { t_ms: 20_000, face_visible: 0.0, eye_contact: None },
            ],
        });
        let svg = ReportChart::Presence.draw(&r, &[]).unwrap().expect("a chart");
        let labels = texts(&svg);
        for text in ["eye contact", "face in view", "100%"] {
            assert!(labels.iter().any(|t| t == text), "{text} in {labels:?}");
        }
    }

    #[test]
    fn progress_needs_two_interviews_and_draws_each_dimension() {
        let past =
            |overall, ended_at| candor_interviewer::report::past_scores("i", ended_at, &Report { overall, ..report() });
        assert_eq!(progress(&[past(50, 1)]).unwrap(), None);
        let svg = progress(&[past(50, 1), past(58, 2), past(71, 3)]).unwrap().expect("a chart");
        for line in ["overall", "technical depth", "communication", "structure", "impact"] {
            assert!(texts(&svg).iter().any(|t| t == line), "{line} in the legend");
        }
        assert!(texts(&svg).iter().any(|t| t == "#1") && texts(&svg).iter().any(|t| t == "#3"), "interviews numbered");
        assert_eq!(svg.matches("<circle").count(), 3, "a point per interview");
    }

    #[test]
    fn only_the_four_charts_are_known() {
        assert_eq!(ReportChart::parse("scores"), Some(ReportChart::Scores));
        assert_eq!(ReportChart::parse("delivery"), Some(ReportChart::Delivery));
        assert_eq!(ReportChart::parse("presence"), Some(ReportChart::Presence));
        assert_eq!(ReportChart::parse("progress"), Some(ReportChart::Progress));
        assert_eq!(ReportChart::parse("../etc"), None);
    }
}
