//! Media sources for synthetic participants: PCM from WAV files, and a VP8 or H264 "camera" that encodes a
//! moving test pattern, or a still picture, with FFmpeg's encoders.

use std::path::Path;

use ffmpeg_next as ffmpeg;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("ffmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg::Error),
    #[error("FFmpeg has no {0} encoder")]
    NoEncoder(&'static str),
}

/// Mono PCM in [-1, 1] and its sample rate. Stereo files are mixed down.
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32), MediaError> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1_i64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>()?
        }
    };
    let channels = usize::from(spec.channels.max(1));
    let mono = samples.chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
    Ok((mono, spec.sample_rate))
}

/// A picture file (PNG, JPEG, ...) as packed RGB24 of exactly `width` x `height` (scaled to fit, letterboxed).
pub fn read_picture(path: &Path, width: u32, height: u32) -> Result<Vec<u8>, MediaError> {
    ffmpeg::init()?;
    let mut input = ffmpeg::format::input(path)?;
    let stream = input.streams().best(ffmpeg::media::Type::Video).ok_or(ffmpeg::Error::StreamNotFound)?;
    let index = stream.index();
    let mut decoder = ffmpeg::codec::context::Context::from_parameters(stream.parameters())?.decoder().video()?;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut decoded = false;
    for (stream, packet) in input.packets() {
        if stream.index() == index {
            decoder.send_packet(&packet)?;
            if decoder.receive_frame(&mut frame).is_ok() {
                decoded = true;
                break;
            }
        }
    }
    if !decoded {
        decoder.send_eof()?;
        decoder.receive_frame(&mut frame)?;
    }
    // Scale to fit inside the camera, keeping the aspect ratio; the rest stays black.
    let scale = (width as f32 / frame.width() as f32).min(height as f32 / frame.height() as f32);
    let (w, h) = (((frame.width() as f32 * scale) as u32).max(1), ((frame.height() as f32 * scale) as u32).max(1));
    let mut scaler = ffmpeg::software::scaling::Context::get(
        frame.format(),
        frame.width(),
        frame.height(),
        ffmpeg::format::Pixel::RGB24,
        w,
        h,
        ffmpeg::software::scaling::Flags::BILINEAR,
    )?;
    let mut rgb = ffmpeg::frame::Video::empty();
    scaler.run(&frame, &mut rgb)?;
    let (left, top) = ((width - w) as usize / 2, (height - h) as usize / 2);
    let mut out = vec![0_u8; width as usize * height as usize * 3];
    for row in 0..h as usize {
        let source = &rgb.data(0)[row * rgb.stride(0)..][..w as usize * 3];
        out[((top + row) * width as usize + left) * 3..][..w as usize * 3].copy_from_slice(source);
    }
    Ok(out)
}

/// The codec a synthetic camera encodes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraCodec {
    Vp8,
    /// Constrained baseline (profile-level-id 42e01f), Annex B, no B-frames: what WebRTC peers expect.
    H264,
}

/// A synthetic camera: `next_frame()` returns one encoded frame of a moving gradient, or of the picture given
/// to `show`.
pub struct Camera {
    encoder: ffmpeg::encoder::Video,
    frame: ffmpeg::frame::Video,
    index: i64,
    still: bool,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Camera {
    pub fn new(codec: CameraCodec, width: u32, height: u32, fps: u32) -> Result<Self, MediaError> {
        ffmpeg::init()?;
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
        let name = match codec {
            CameraCodec::Vp8 => "libvpx",
            CameraCodec::H264 => "libx264",
        };
        let encoder_codec = ffmpeg::encoder::find_by_name(name).ok_or(MediaError::NoEncoder(name))?;
        let mut context = ffmpeg::codec::context::Context::new_with_codec(encoder_codec).encoder().video()?;
        context.set_width(width);
        context.set_height(height);
        context.set_format(ffmpeg::format::Pixel::YUV420P);
        context.set_time_base((1, fps as i32));
        context.set_bit_rate(400_000);
        context.set_gop(fps * 2);
        context.set_max_b_frames(0);
        let mut options = ffmpeg::Dictionary::new();
        match codec {
            CameraCodec::Vp8 => {
                options.set("deadline", "realtime");
                options.set("cpu-used", "8");
                options.set("lag-in-frames", "0");
            }
            CameraCodec::H264 => {
                options.set("preset", "ultrafast");
                options.set("tune", "zerolatency");
                options.set("profile", "baseline");
            }
        }
        let encoder = context.open_with(options)?;
        let frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, width, height);
        Ok(Self { encoder, frame, index: 0, still: false, width, height, fps })
    }

    /// Shows a still RGB24 picture of the camera's size (rows packed) from the next frame on.
    pub fn show(&mut self, rgb: &[u8]) {
        let (w, h) = (self.width as usize, self.height as usize);
        assert_eq!(rgb.len(), w * h * 3, "the picture has the camera's size");
        let pixel = |x: usize, y: usize| {
            let p = &rgb[(y * w + x) * 3..][..3];
            (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]))
        };
        // BT.601 limited range, as the encoders assume for YUV420P.
        let luma = self.frame.stride(0);
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = pixel(x, y);
                self.frame.data_mut(0)[y * luma + x] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8;
            }
        }
        for plane in 1..3 {
            let stride = self.frame.stride(plane);
            for y in 0..h / 2 {
                for x in 0..w / 2 {
                    let (r, g, b) = pixel(x * 2, y * 2);
                    let value = if plane == 1 {
                        128.0 - 0.148 * r - 0.291 * g + 0.439 * b
                    } else {
                        128.0 + 0.439 * r - 0.368 * g - 0.071 * b
                    };
                    self.frame.data_mut(plane)[y * stride + x] = value.round() as u8;
                }
            }
        }
        self.still = true;
    }

    /// The next encoded frame (possibly several packets' worth of VP8 bitstream, concatenated per frame).
    pub fn next_frame(&mut self) -> Result<Vec<Vec<u8>>, MediaError> {
        let t = self.index as usize;
        for plane in (0..3).filter(|_| !self.still) {
            let stride = self.frame.stride(plane);
            let (w, h) = if plane == 0 {
                (self.width as usize, self.height as usize)
            } else {
                (self.width as usize / 2, self.height as usize / 2)
            };
            let data = self.frame.data_mut(plane);
            for y in 0..h {
                for x in 0..w {
                    data[y * stride + x] = if plane == 0 { ((x + y + t * 4) % 256) as u8 } else { 128 };
                }
            }
        }
        self.frame.set_pts(Some(self.index));
        self.index += 1;
        self.encoder.send_frame(&self.frame)?;
        let mut frames = Vec::new();
        let mut packet = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            if let Some(data) = packet.data() {
                frames.push(data.to_vec());
            }
        }
        Ok(frames)
    }
}
