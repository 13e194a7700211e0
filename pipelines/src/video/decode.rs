//! `VideoDecoder`: FFmpeg's VP8/H264 decoders behind a small type: encoded frames in, `DecodedFrame` (RGB24 at
//! most `max_side` pixels on the longer side) out, no more often than `min_interval_ms`.

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

/// The largest picture decoded (4096x2304, above 4K UHD): a stream that declares a larger one is refused frame
/// by frame, so that a stranger's video cannot make the server allocate gigabytes.
const MAX_PIXELS: i64 = 4096 * 2304;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    H264,
}

impl VideoCodec {
    /// From an RTP codec MIME type such as `video/VP8`.
    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime.to_ascii_lowercase().as_str() {
            "video/vp8" => Some(Self::Vp8),
            "video/h264" => Some(Self::H264),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("ffmpeg: {0}")]
    Ffmpeg(#[from] ffmpeg::Error),
    #[error("ffmpeg has no {0:?} decoder")]
    NoDecoder(VideoCodec),
}

/// One frame ready for analysis.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    /// Size of the video as sent.
    pub source_width: u32,
    pub source_height: u32,
    /// Size of `rgb`.
    pub width: u32,
    pub height: u32,
    /// Packed RGB24 rows, `width * 3` bytes each.
    pub rgb: Vec<u8>,
    /// Caller's timestamp of the encoded frame.
    pub t_ms: u64,
}

pub struct VideoDecoder {
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(scaling::Context, (u32, u32, Pixel))>,
    max_side: u32,
    min_interval_ms: u64,
    last_emitted_ms: Option<u64>,
    /// Frames decoded in total, emitted or not.
    pub decoded: u64,
}

impl VideoDecoder {
    pub fn new(codec: VideoCodec, max_side: u32, min_interval_ms: u64) -> Result<Self, VideoError> {
        ffmpeg::init()?;
        // FFmpeg logs every damaged frame to stderr; the caller counts errors instead.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
        let id = match codec {
            VideoCodec::Vp8 => ffmpeg::codec::Id::VP8,
            VideoCodec::H264 => ffmpeg::codec::Id::H264,
        };
        let found = ffmpeg::decoder::find(id).ok_or(VideoError::NoDecoder(codec))?;
        let mut context = ffmpeg::codec::context::Context::new_with_codec(found);
        // SAFETY: the context was just allocated and is not open yet; `max_pixels` is a plain field.
        unsafe { (*context.as_mut_ptr()).max_pixels = MAX_PIXELS };
        let decoder = context.decoder().video()?;
        Ok(Self {
            decoder,
            scaler: None,
            max_side: max_side.max(16),
            min_interval_ms,
            last_emitted_ms: None,
            decoded: 0,
        })
    }

    /// Decodes one complete encoded frame. Returns the newest decoded picture if the rate gate lets it through.
    /// A corrupt frame is an error; the decoder recovers at the next keyframe.
    pub fn decode(&mut self, data: &[u8], t_ms: u64) -> Result<Option<DecodedFrame>, VideoError> {
        self.decoder.send_packet(&ffmpeg::Packet::copy(data))?;
        let mut newest = None;
        loop {
            // A fresh frame each time: a failed receive empties the frame it was given.
            let mut frame = ffmpeg::frame::Video::empty();
            if self.decoder.receive_frame(&mut frame).is_err() {
                break;
            }
            self.decoded += 1;
            newest = Some(frame);
        }
        let Some(frame) = newest else { return Ok(None) };
        if self.last_emitted_ms.is_some_and(|last| t_ms < last + self.min_interval_ms) {
            return Ok(None);
        }
        self.last_emitted_ms = Some(t_ms);
        self.convert(&frame, t_ms).map(Some)
    }

    fn convert(&mut self, frame: &ffmpeg::frame::Video, t_ms: u64) -> Result<DecodedFrame, VideoError> {
        let (w, h) = (frame.width(), frame.height());
        let scale = (self.max_side as f32 / w.max(h) as f32).min(1.0);
        // Even sizes keep the chroma planes whole.
        let out_w = (((w as f32 * scale) as u32) & !1).max(2);
        let out_h = (((h as f32 * scale) as u32) & !1).max(2);
        let key = (w, h, frame.format());
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let context =
                scaling::Context::get(frame.format(), w, h, Pixel::RGB24, out_w, out_h, scaling::Flags::BILINEAR)?;
            self.scaler = Some((context, key));
        }
        let (scaler, _) = self.scaler.as_mut().expect("set just above");
        let mut rgb = ffmpeg::frame::Video::empty();
        scaler.run(frame, &mut rgb)?;
        let stride = rgb.stride(0);
        let row = out_w as usize * 3;
        let data = rgb.data(0);
        let mut packed = Vec::with_capacity(row * out_h as usize);
        for y in 0..out_h as usize {
            packed.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Ok(DecodedFrame { source_width: w, source_height: h, width: out_w, height: out_h, rgb: packed, t_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_or_nothing_and_never_a_crash() {
        let mut decoder = VideoDecoder::new(VideoCodec::Vp8, 320, 200).unwrap();
        for junk in [&[0_u8; 0][..], &[1, 2, 3], &[0xff; 100]] {
            assert!(decoder.decode(junk, 0).map(|f| f.is_none()).unwrap_or(true));
        }
        let mut h264 = VideoDecoder::new(VideoCodec::H264, 320, 200).unwrap();
        assert!(h264.decode(&[0, 0, 0, 1, 0x65, 0xff, 0xff], 0).map(|f| f.is_none()).unwrap_or(true));
    }

    #[test]
    fn codecs_are_named_by_mime_type() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/H264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("video/AV1"), None);
    }
}
