//! Levels in dBFS: RMS relative to full scale 1.0 (so a full-scale sine reads -3.01 dBFS). Silence is reported
//! as `SILENCE_DBFS` rather than minus infinity.

/// The floor reported for digital silence; far below any microphone's noise.
pub const SILENCE_DBFS: f32 = -100.0;

/// RMS level of `samples` in dBFS.
pub fn dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let mean_square = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / samples.len() as f64;
    mean_square_dbfs(mean_square)
}

fn mean_square_dbfs(mean_square: f64) -> f32 {
    if mean_square <= 0.0 { SILENCE_DBFS } else { (10.0 * mean_square.log10()).max(f64::from(SILENCE_DBFS)) as f32 }
}

/// Accumulates samples and yields the RMS level of each complete window (e.g. one second).
pub struct LevelMeter {
    window: usize,
    sum_squares: f64,
    count: usize,
}

impl LevelMeter {
    pub fn new(window_samples: usize) -> Self {
        Self { window: window_samples.max(1), sum_squares: 0.0, count: 0 }
    }

    /// Adds samples; returns the level of each window completed by them.
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        let mut levels = Vec::new();
        for s in samples {
            self.sum_squares += f64::from(*s) * f64::from(*s);
            self.count += 1;
            if self.count == self.window {
                levels.push(mean_square_dbfs(self.sum_squares / self.window as f64));
                self.sum_squares = 0.0;
                self.count = 0;
            }
        }
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_scale_sine_is_minus_three_dbfs() {
        let sine: Vec<f32> = (0..48_000).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin()).collect();
        assert!((dbfs(&sine) + 3.01).abs() < 0.01);
        let half: Vec<f32> = sine.iter().map(|s| s * 0.5).collect();
        assert!((dbfs(&half) + 9.03).abs() < 0.01);
    }

    #[test]
    fn silence_reads_the_floor() {
        assert_eq!(dbfs(&[0.0; 100]), SILENCE_DBFS);
        assert_eq!(dbfs(&[]), SILENCE_DBFS);
    }

    #[test]
    fn the_meter_reports_one_level_per_window() {
        let mut meter = LevelMeter::new(100);
        assert!(meter.push(&[0.5; 150]).len() == 1);
        let levels = meter.push(&[0.5; 50]);
        assert_eq!(levels.len(), 1);
        assert!((levels[0] - dbfs(&[0.5; 100])).abs() < 1e-4);
    }
}
