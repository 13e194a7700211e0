//! The crops the face models take: a square region of an RGB image, possibly rotated (to undo head roll) and
//! mirrored (the iris model sees left eyes as right ones), resampled bilinearly to the model's input size.

/// A borrowed RGB24 image, rows packed (`width * 3` bytes each).
#[derive(Clone, Copy)]
pub struct RgbImage<'a> {
    pub width: u32,
    pub height: u32,
    pub data: &'a [u8],
}

/// A square in image coordinates: centre, side and rotation (radians; the square's x axis points along
/// `(cos angle, sin angle)`, y down as in the image).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub cx: f32,
    pub cy: f32,
    pub size: f32,
    pub angle: f32,
}

impl Region {
    /// Image coordinates of a point of the region given in units of its side, (0, 0) top left, (1, 1) bottom right.
    pub fn to_image(&self, u: f32, v: f32) -> (f32, f32) {
        let (dx, dy) = ((u - 0.5) * self.size, (v - 0.5) * self.size);
        let (sin, cos) = self.angle.sin_cos();
        (self.cx + dx * cos - dy * sin, self.cy + dx * sin + dy * cos)
    }
}

impl RgbImage<'_> {
    /// `region` as `n` x `n` pixels, channels last, each value `map`ped from 0..=255; mirrored left to right if
    /// asked. Whatever lies outside the image reads as black.
    pub fn crop(&self, region: &Region, n: usize, mirror: bool, map: impl Fn(f32) -> f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * n * 3);
        for row in 0..n {
            for col in 0..n {
                let col = if mirror { n - 1 - col } else { col };
                let (x, y) = region.to_image((col as f32 + 0.5) / n as f32, (row as f32 + 0.5) / n as f32);
                out.extend(self.sample(x - 0.5, y - 0.5).map(&map));
            }
        }
        out
    }

    /// The crop in grey (mean of the channels), one value per pixel.
    pub fn crop_grey(&self, region: &Region, n: usize, map: impl Fn(f32) -> f32) -> Vec<f32> {
        self.crop(region, n, false, |v| v).chunks_exact(3).map(|p| map((p[0] + p[1] + p[2]) / 3.0)).collect()
    }

    /// Bilinear sample at pixel-centre coordinates (0, 0 is the centre of the top-left pixel).
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let mut out = [0.0; 3];
        for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
            for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                let (px, py) = (x0 as i64 + dx, y0 as i64 + dy);
                if px < 0 || py < 0 || px >= i64::from(self.width) || py >= i64::from(self.height) {
                    continue;
                }
                let at = (py as usize * self.width as usize + px as usize) * 3;
                for (channel, value) in out.iter_mut().enumerate() {
                    *value += wx * wy * f32::from(self.data[at + channel]);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4x2 image: red channel = 10 * x, green = 100 * y, blue = 7.
    fn ramp() -> Vec<u8> {
        (0..2).flat_map(|y| (0..4).flat_map(move |x| [10 * x, 100 * y, 7])).collect()
    }

    #[test]
    fn an_axis_aligned_crop_at_pixel_size_copies_pixels() {
        let data = ramp();
        let image = RgbImage { width: 4, height: 2, data: &data };
        let region = Region { cx: 2.0, cy: 1.0, size: 2.0, angle: 0.0 }; // pixels x 1..=2, y 0..=1
        let crop = image.crop(&region, 2, false, |v| v);
        assert_eq!(crop, [10.0, 0.0, 7.0, 20.0, 0.0, 7.0, 10.0, 100.0, 7.0, 20.0, 100.0, 7.0]);
        let mirrored = image.crop(&region, 2, true, |v| v);
        assert_eq!(&mirrored[..3], &[20.0, 0.0, 7.0]);
        assert_eq!(image.crop_grey(&region, 2, |v| v)[0], (10.0 + 0.0 + 7.0) / 3.0);
    }

    #[test]
    fn outside_the_image_is_black_and_rotation_turns_the_axes() {
        let data = ramp();
        let image = RgbImage { width: 4, height: 2, data: &data };
        let far = Region { cx: 100.0, cy: 100.0, size: 2.0, angle: 0.0 };
        assert!(image.crop(&far, 2, false, |v| v).iter().all(|&v| v == 0.0));
        // A quarter turn: the region's x axis points down the image.
        let turned = Region { cx: 0.0, cy: 0.0, size: 2.0, angle: std::f32::consts::FRAC_PI_2 };
        let (x, y) = turned.to_image(1.0, 0.5);
        assert!((x - 0.0).abs() < 1e-5 && (y - 1.0).abs() < 1e-5, "({x}, {y})");
    }
}
