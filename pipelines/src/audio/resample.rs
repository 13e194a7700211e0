//! `Resampler`: streaming sample-rate conversion by an exact rational factor with a polyphase windowed-sinc
//! filter (Blackman window, 12 zero crossings each side, pass band to 95% of the lower Nyquist frequency).
//! Used for 48 kHz Opus to the 16 kHz speech pipelines and for any TTS rate to 48 kHz.

pub struct Resampler {
    /// Output rate / gcd and input rate / gcd: output n sits at input position n * down / up.
    up: u64,
    down: u64,
    /// Taps each side of the centre.
    half: usize,
    /// `up` phases of `2 * half` taps each.
    bank: Vec<f32>,
    /// Input not yet fully used, starting at absolute input index `buf_start`.
    buf: Vec<f32>,
    buf_start: i64,
    next_out: u64,
}

impl Resampler {
    const ZERO_CROSSINGS: f64 = 12.0;
    const PASS_BAND: f64 = 0.95;

    /// Rates in Hz, each from 1 kHz to 384 kHz.
    pub fn new(from: u32, to: u32) -> Self {
        assert!((1000..=384_000).contains(&from) && (1000..=384_000).contains(&to), "unsupported rate {from} -> {to}");
        let g = gcd(u64::from(from), u64::from(to));
        let (up, down) = (u64::from(to) / g, u64::from(from) / g);
        // Cut-off in cycles per input sample: the lower Nyquist frequency, with a transition band.
        let cutoff = 0.5 * (f64::from(to) / f64::from(from)).min(1.0) * Self::PASS_BAND;
        let half = (Self::ZERO_CROSSINGS / (2.0 * cutoff)).ceil() as usize;
        let width = 2 * half;
        let mut bank = Vec::with_capacity(up as usize * width);
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let taps: Vec<f64> = (0..width)
                .map(|j| {
                    let d = frac - (j as f64 - half as f64 + 1.0);
                    let x = 2.0 * cutoff * d;
                    let sinc = if x.abs() < 1e-12 {
                        1.0
                    } else {
                        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                    };
                    // Blackman window over [-half, half].
                    let w = 0.5 + d / (2.0 * half as f64);
                    let window = if (0.0..=1.0).contains(&w) {
                        0.42 - 0.5 * (2.0 * std::f64::consts::PI * w).cos()
                            + 0.08 * (4.0 * std::f64::consts::PI * w).cos()
                    } else {
                        0.0
                    };
                    sinc * window
                })
                .collect();
            // Unity gain at DC for every phase.
            let sum: f64 = taps.iter().sum();
            bank.extend(taps.iter().map(|t| (t / sum) as f32));
        }
        Self { up, down, half, bank, buf: Vec::new(), buf_start: 0, next_out: 0 }
    }

    /// Converts `input`, appending every output sample that `input` completes to `out`. Output lags input by
    /// about `half` input samples (0.25 ms at 48 kHz upsampling, 0.8 ms at 48 to 16 kHz).
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.buf.extend_from_slice(input);
        let width = 2 * self.half;
        let end = self.buf_start + self.buf.len() as i64;
        loop {
            let position = self.next_out * self.down;
            let centre = (position / self.up) as i64;
            let phase = (position % self.up) as usize;
            if centre + self.half as i64 >= end {
                break;
            }
            let taps = &self.bank[phase * width..(phase + 1) * width];
            let first = centre - self.half as i64 + 1;
            let mut acc = 0.0_f32;
            for (j, h) in taps.iter().enumerate() {
                let index = first + j as i64;
                if index >= self.buf_start {
                    acc += self.buf[(index - self.buf_start) as usize] * h;
                }
            }
            out.push(acc);
            self.next_out += 1;
        }
        let next_centre = (self.next_out * self.down / self.up) as i64;
        let keep_from = next_centre - self.half as i64 + 1;
        if keep_from > self.buf_start {
            let drop = ((keep_from - self.buf_start) as usize).min(self.buf.len());
            self.buf.drain(..drop);
            self.buf_start += drop as i64;
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::dbfs;

    fn tone(freq: f32, rate: u32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| 0.5 * (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin())
            .collect()
    }

    fn resample_in_chunks(from: u32, to: u32, input: &[f32], chunk: usize) -> Vec<f32> {
        let mut resampler = Resampler::new(from, to);
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            resampler.process(piece, &mut out);
        }
        out
    }

    #[test]
    fn downsampling_keeps_the_pass_band_and_removes_what_would_alias() {
        let pass = resample_in_chunks(48_000, 16_000, &tone(1000.0, 48_000, 1.0), 960);
        assert!((pass.len() as i64 - 16_000).abs() < 40, "{}", pass.len());
        assert!((dbfs(&pass[200..]) - dbfs(&tone(1000.0, 16_000, 1.0))).abs() < 0.1);
        let high = resample_in_chunks(48_000, 16_000, &tone(6000.0, 48_000, 1.0), 960);
        let loss = dbfs(&tone(6000.0, 16_000, 1.0)) - dbfs(&high[200..]);
        assert!(loss.abs() < 0.5, "6 kHz is in the pass band, lost {loss} dB");
        let alias = resample_in_chunks(48_000, 16_000, &tone(12_000.0, 48_000, 1.0), 960);
        assert!(dbfs(&alias[200..]) < dbfs(&pass[200..]) - 50.0, "12 kHz must not fold back to 4 kHz");
    }

    #[test]
    fn upsampling_an_odd_rate_keeps_the_tone_and_the_duration() {
        let out = resample_in_chunks(22_050, 48_000, &tone(440.0, 22_050, 2.0), 1000);
        assert!((out.len() as i64 - 96_000).abs() < 40);
        // Compare with the ideal 48 kHz tone, allowing for the filter's delay (< 1 ms).
        let ideal = tone(440.0, 48_000, 2.0);
        let best = (0..48)
            .map(|lag| out[1000..90_000].iter().zip(&ideal[1000 - lag..]).map(|(a, b)| (a - b).powi(2)).sum::<f32>())
            .fold(f32::MAX, f32::min);
        assert!(best / 89_000.0 < 1e-5, "mean squared error {best}");
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_output() {
        let input = tone(300.0, 48_000, 0.5);
        let whole = resample_in_chunks(48_000, 16_000, &input, input.len());
        let pieces = resample_in_chunks(48_000, 16_000, &input, 7);
        assert_eq!(whole.len(), pieces.len());
        assert!(whole.iter().zip(&pieces).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
