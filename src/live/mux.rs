//! Containers for recorded media, written in memory as the media arrives and taken out a piece at a time
//! (`taping` seals each piece to disk). No transcoding: the packets go in as they were received.
//! - `OggOpus`: one Opus stream in Ogg (RFC 7845), for a voice.
//! - `WebmMux`: the candidate's camera (VP8 in WebM, or H.264 in Matroska) and voice (Opus), clusters of known
//!   size in a segment of unknown size, as a live recorder writes them.

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use webm_iterable::WebmWriter;
use webm_iterable::matroska_spec::{Master, MatroskaSpec, SimpleBlock};

/// Opus runs at 48 kHz whatever the input rate; Ogg granules count these samples.
pub const RATE: u64 = 48_000;
pub const FRAME: u64 = RATE / 50;
/// An Opus packet of one 20 ms CELT frame with no data: decoders conceal it as silence.
const EMPTY_FRAME: [u8; 1] = [0xF8];
/// Packets per Ogg page (about a second of 20 ms packets).
const PAGE_PACKETS: u32 = 50;
/// A forward jump of the RTP clock beyond this is a new stream, not a gap to fill.
pub const MAX_GAP: u64 = 10 * 60 * RATE;

/// The Opus identification header: mono, no pre-skip (granules are the session's clock), 48 kHz.
fn opus_head() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels: mono, as WebRTC sends and Piper speaks
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&(RATE as u32).to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0
    head
}

/// Ogg Opus written in memory (RFC 7845): the header pages, then packets at their place on the timeline.
pub struct OggOpus {
    pages: PacketWriter<'static, Vec<u8>>,
    serial: u32,
    /// Samples written so far (the granule position).
    granule: u64,
    in_page: u32,
}

impl OggOpus {
    pub fn new(serial: u32) -> Self {
        let mut pages = PacketWriter::new(Vec::new());
        let head = opus_head();
        let mut tags = b"OpusTags".to_vec();
        let vendor = b"candor";
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        // Writing to a Vec cannot fail.
        let _ = pages.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0);
        let _ = pages.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0);
        Self { pages, serial, granule: 0, in_page: 0 }
    }

    /// Adds a packet that starts at sample `at` (at the end when `None`); silence fills a gap before it. A
    /// packet from before the end (late, repeated) or that is not Opus is left out. Returns whether it went in.
    pub fn push(&mut self, packet: &[u8], at: Option<u64>) -> bool {
        let Ok(samples) = opus::packet::get_nb_samples(packet, RATE as u32) else { return false };
        let at = at.unwrap_or(self.granule);
        if at + FRAME / 2 < self.granule {
            return false;
        }
        let gap = at.saturating_sub(self.granule);
        for _ in 0..(gap / FRAME).min(MAX_GAP / FRAME) {
            self.packet(&EMPTY_FRAME, FRAME);
        }
        self.packet(packet, samples as u64);
        true
    }

    fn packet(&mut self, packet: &[u8], samples: u64) {
        self.granule += samples;
        self.in_page += 1;
        let end = if self.in_page >= PAGE_PACKETS {
            self.in_page = 0;
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        let _ = self.pages.write_packet(packet.to_vec(), self.serial, end, self.granule);
    }

    /// The finished pages written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.pages.inner_mut())
    }

    /// Ends the stream (with one empty frame, the last packet must carry the end flag) and returns the rest.
    pub fn finish(mut self) -> Vec<u8> {
        self.granule += FRAME;
        let _ = self.pages.write_packet(EMPTY_FRAME.to_vec(), self.serial, PacketWriteEndInfo::EndStream, self.granule);
        self.pages.into_inner()
    }

    pub fn duration_ms(&self) -> u64 {
        self.granule * 1000 / RATE
    }

    /// Samples written so far: where the next packet goes when none is given.
    pub fn granule(&self) -> u64 {
        self.granule
    }
}


const VIDEO_TRACK: u64 = 1;
const AUDIO_TRACK: u64 = 2;
/// A cluster holds at most this much; a keyframe starts a new one after a second (players seek to clusters).
const CLUSTER_MS: u64 = 5_000;
const KEYFRAME_CLUSTER_MS: u64 = 1_000;

/// The camera's codec as the container names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Camera {
    Vp8,
    /// H.264 with its decoder configuration (`avcC`, from the first keyframe's parameter sets).
    H264 { avcc: Vec<u8> },
}

impl Camera {
    pub fn media_type(&self) -> &'static str {
        match self {
            Self::Vp8 => "video/webm",
            Self::H264 { .. } => "video/x-matroska",
        }
    }
}

/// A camera's first keyframe: the codec with its configuration, and the picture size.
pub fn first_keyframe(frame: &[u8], h264: bool) -> Option<(Camera, u32, u32)> {
    if !h264 {
        return vp8_keyframe(frame).map(|(w, h)| (Camera::Vp8, w, h));
    }
    let nals = annex_b(frame);
    if !has_idr(&nals) {
        return None;
    }
    let sps = nals.iter().find(|n| n.first().is_some_and(|h| h & 0x1f == 7))?;
    let pps = nals.iter().find(|n| n.first().is_some_and(|h| h & 0x1f == 8))?;
    let (width, height) = sps_size(sps)?;
    let mut avcc = vec![1, *sps.get(1)?, *sps.get(2)?, *sps.get(3)?, 0xFF, 0xE1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(pps);
    Some((Camera::H264 { avcc }, width, height))
}

/// The NAL units of an Annex B frame (start codes removed).
fn annex_b(frame: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= frame.len() {
        if frame[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(frame.len(), |next| next - 3);
        while end > start && frame[end - 1] == 0 {
            end -= 1; // the zero of a four-byte start code, or trailing zeros
        }
        nals.push(&frame[start..end]);
    }
    nals
}

/// Whether the NAL units hold an IDR slice: the frame is a keyframe.
fn has_idr(nals: &[&[u8]]) -> bool {
    nals.iter().any(|n| n.first().is_some_and(|h| h & 0x1f == 5))
}

/// NAL units as Matroska stores H.264: each prefixed with its 4-byte length.
fn length_prefixed(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter().flat_map(|nal| (nal.len() as u32).to_be_bytes().into_iter().chain(nal.iter().copied())).collect()
}

/// The picture size a sequence parameter set gives (ITU-T H.264, 7.3.2.1.1), cropping applied.
fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    // Emulation prevention bytes out (00 00 03 -> 00 00).
    let mut rbsp = Vec::with_capacity(sps.len());
    for &b in sps.get(1..)? {
        if b == 3 && rbsp.ends_with(&[0, 0]) {
            continue;
        }
        rbsp.push(b);
    }
    let mut bits = Bits { data: &rbsp, at: 0 };
    let profile = bits.take(8)?;
    bits.take(16)?; // constraint flags, level
    bits.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma_format = bits.ue()?;
        if chroma_format == 3 {
            bits.take(1)?;
        }
        bits.ue()?; // bit depths
        bits.ue()?;
        bits.take(1)?;
        if bits.take(1)? == 1 {
            for list in 0..if chroma_format == 3 { 12 } else { 8 } {
                if bits.take(1)? == 1 {
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..if list < 6 { 16 } else { 64 } {
                        if next != 0 {
                            next = (last + bits.se()? + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    bits.ue()?; // log2_max_frame_num_minus4
    match bits.ue()? {
        0 => {
            bits.ue()?;
        }
        1 => {
            bits.take(1)?;
            bits.se()?;
            bits.se()?;
            for _ in 0..bits.ue()? {
                bits.se()?;
            }
        }
        _ => {}
    }
    bits.ue()?; // max_num_ref_frames
    bits.take(1)?;
    let width_mbs = bits.ue()? + 1;
    let height_units = bits.ue()? + 1;
    let frame_mbs_only = bits.take(1)?;
    if frame_mbs_only == 0 {
        bits.take(1)?;
    }
    bits.take(1)?; // direct_8x8_inference
    let (mut crop_x, mut crop_y) = (0, 0);
    if bits.take(1)? == 1 {
        let (left, right, top, bottom) = (bits.ue()?, bits.ue()?, bits.ue()?, bits.ue()?);
        let (unit_x, unit_y) = if chroma_format == 0 { (1, 2 - frame_mbs_only) } else { (2, 2 * (2 - frame_mbs_only)) };
        (crop_x, crop_y) = (unit_x * (left + right), unit_y * (top + bottom));
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// A bit reader with Exp-Golomb codes.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u64> {
        let mut value = 0;
        for _ in 0..n {
            let byte = self.data.get(self.at / 8)?;
            value = value << 1 | u64::from(byte >> (7 - self.at % 8) & 1);
            self.at += 1;
        }
        Some(value)
    }

    fn ue(&mut self) -> Option<u64> {
        let mut zeros = 0;
        while self.take(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1 << zeros) - 1 + self.take(zeros)?)
    }

    fn se(&mut self) -> Option<i64> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Whether a VP8 frame is a keyframe, and its size when it is (RFC 6386, 9.1).
pub fn vp8_keyframe(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((u32::from(width), u32::from(height)))
}

/// WebM (Matroska for H.264) of a camera and an Opus voice; times are milliseconds from the first keyframe.
pub struct WebmMux {
    out: WebmWriter<Vec<u8>>,
    camera: Camera,
    /// The open cluster: its start and its blocks.
    cluster: Option<(u64, Vec<MatroskaSpec>)>,
    end_ms: u64,
}

impl WebmMux {
    /// Starts the file with the camera's codec and picture size (from its first keyframe).
    pub fn new(camera: Camera, width: u32, height: u32) -> Self {
        use MatroskaSpec::*;
        let mut out = WebmWriter::new(Vec::new());
        let header = Ebml(Master::Full(vec![
            EbmlVersion(1),
            EbmlReadVersion(1),
            EbmlMaxIdLength(4),
            EbmlMaxSizeLength(8),
            DocType(if camera == Camera::Vp8 { "webm" } else { "matroska" }.into()),
            DocTypeVersion(4),
            DocTypeReadVersion(2),
        ]));
        let info = Info(Master::Full(vec![TimestampScale(1_000_000), MuxingApp("candor".into()), WritingApp("candor".into())]));
        let mut video = vec![TrackNumber(VIDEO_TRACK), TrackUID(VIDEO_TRACK), TrackType(1)];
        match &camera {
            Camera::Vp8 => video.push(CodecID("V_VP8".into())),
            Camera::H264 { avcc } => video.extend([CodecID("V_MPEG4/ISO/AVC".into()), CodecPrivate(avcc.clone())]),
        }
        video.push(Video(Master::Full(vec![PixelWidth(u64::from(width)), PixelHeight(u64::from(height))])));
        let video = TrackEntry(Master::Full(video));
        let audio = TrackEntry(Master::Full(vec![
            TrackNumber(AUDIO_TRACK),
            TrackUID(AUDIO_TRACK),
            TrackType(2),
            CodecID("A_OPUS".into()),
            CodecPrivate(opus_head()),
            CodecDelay(0),
            SeekPreRoll(80_000_000),
            Audio(Master::Full(vec![SamplingFrequency(RATE as f64), Channels(1)])),
        ]));
        // Writing well-formed tags to a Vec cannot fail.
        let _ = out.write(&header);
        let _ = out.write_advanced(&Segment(Master::Start), ebml_iterable::WriteOptions::is_unknown_sized_element());
        let _ = out.write(&info);
        let _ = out.write(&Tracks(Master::Full(vec![video, audio])));
        Self { out, camera, cluster: None, end_ms: 0 }
    }

    /// A camera frame at `ms`; the first frames must include a keyframe before anything is written.
    pub fn video(&mut self, frame: &[u8], ms: u64) {
        let (keyframe, frame) = match self.camera {
            Camera::Vp8 => (vp8_keyframe(frame).is_some(), std::borrow::Cow::Borrowed(frame)),
            Camera::H264 { .. } => {
                let nals = annex_b(frame);
                (has_idr(&nals), std::borrow::Cow::Owned(length_prefixed(&nals)))
            }
        };
        let open_long_enough = self.cluster.as_ref().is_none_or(|(start, _)| ms >= start + KEYFRAME_CLUSTER_MS);
        if keyframe && open_long_enough {
            self.start_cluster(ms);
        }
        if self.cluster.is_some() {
            self.block(VIDEO_TRACK, &frame, ms, keyframe);
        }
    }

    /// A voice packet at `ms`; before the first keyframe there is no cluster for it and it is left out.
    pub fn audio(&mut self, packet: &[u8], ms: u64) {
        if self.cluster.is_some() {
            self.block(AUDIO_TRACK, packet, ms, true);
        }
    }

    fn block(&mut self, track: u64, data: &[u8], ms: u64, keyframe: bool) {
        if self.cluster.as_ref().is_some_and(|(start, _)| ms >= start + CLUSTER_MS) {
            self.start_cluster(ms);
        }
        let Some((start, blocks)) = self.cluster.as_mut() else { return };
        let offset = ms.saturating_sub(*start).min(i16::MAX as u64) as i16;
        blocks.push(SimpleBlock::new_uncheked(data, track, offset, false, None, false, keyframe).into());
        self.end_ms = self.end_ms.max(ms + 20);
    }

    fn start_cluster(&mut self, ms: u64) {
        self.close_cluster();
        self.cluster = Some((ms, Vec::new()));
    }

    fn close_cluster(&mut self) {
        if let Some((start, blocks)) = self.cluster.take() {
            let mut children = vec![MatroskaSpec::Timestamp(start)];
            children.extend(blocks);
            let _ = self.out.write(&MatroskaSpec::Cluster(Master::Full(children)));
        }
    }

    /// The finished clusters written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.out.get_mut())
    }

    /// Writes the open cluster; the rest of the file.
    pub fn finish(mut self) -> Vec<u8> {
        self.close_cluster();
        self.take()
    }

    pub fn duration_ms(&self) -> u64 {
        self.end_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webm_iterable::WebmIterator;

    /// One 20 ms Opus frame of silence from a real encoder.
    fn frame() -> Vec<u8> {
        let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        encoder.encode_vec(&[0i16; 960], 400).unwrap()
    }

    fn packets(bytes: &[u8]) -> Vec<(Vec<u8>, u64)> {
        let mut reader = ogg::reading::PacketReader::new(std::io::Cursor::new(bytes.to_vec()));
        let mut out = Vec::new();
        while let Some(packet) = reader.read_packet().unwrap() {
            let granule = packet.absgp_page();
            out.push((packet.data, granule));
        }
        out
    }

    #[test]
    fn packets_land_at_their_time_with_gaps_filled_and_late_ones_left_out() {
        let mut ogg = OggOpus::new(7);
        let f = frame();
        assert!(ogg.push(&f, Some(0)));
        assert!(ogg.push(&f, Some(FRAME)));
        assert!(ogg.push(&f, Some(5 * FRAME)), "after three lost packets");
        assert!(!ogg.push(&f, Some(2 * FRAME)), "a late packet is not written twice");
        assert!(!ogg.push(b"\xff\xff\xff", None), "not Opus");
        let mut bytes = ogg.take();
        assert_eq!(ogg.duration_ms(), 120);
        bytes.extend(ogg.finish());
        let all = packets(&bytes);
        assert_eq!(&all[0].0[..8], b"OpusHead");
        assert_eq!(&all[1].0[..8], b"OpusTags");
        let audio: Vec<&Vec<u8>> = all[2..].iter().map(|(p, _)| p).collect();
        assert_eq!(audio.len(), 2 + 3 + 1 + 1, "two, three fillers, one, and the closing frame");
        assert_eq!(audio[2].as_slice(), EMPTY_FRAME);
        assert_eq!(all.last().unwrap().1, 7 * FRAME, "the last granule is the length in samples");
        // Every page is checksummed by the reader; a browser's demuxer sees a normal Opus stream.
        let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
        let mut pcm = vec![0i16; 5760];
        let decoded: usize = audio.iter().map(|p| decoder.decode(p, &mut pcm, false).unwrap()).sum();
        assert_eq!(decoded as u64, 7 * FRAME);
    }

    /// A VP8 keyframe header of `width` x `height` (the frame is not decoded here).
    fn keyframe(width: u16, height: u16) -> Vec<u8> {
        let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        frame.extend_from_slice(&width.to_le_bytes());
        frame.extend_from_slice(&height.to_le_bytes());
        frame.extend_from_slice(&[0u8; 20]);
        frame
    }

    #[test]
    fn webm_holds_both_tracks_in_clusters_that_start_on_keyframes() {
        let (key, delta, voice) = (keyframe(640, 480), vec![0x31u8; 30], frame());
        assert_eq!(vp8_keyframe(&key), Some((640, 480)));
        assert_eq!(vp8_keyframe(&delta), None);
        let mut webm = WebmMux::new(Camera::Vp8, 640, 480);
        webm.audio(&voice, 0); // before the first keyframe: left out
        webm.video(&delta, 0); // likewise
        let mut bytes = webm.take();
        for i in 0..150u64 {
            let ms = i * 20;
            if i % 3 == 0 {
                webm.video(if i % 75 == 0 { &key } else { &delta }, ms);
            }
            webm.audio(&voice, ms);
        }
        bytes.extend(webm.take());
        assert_eq!(webm.duration_ms(), 3_000);
        bytes.extend(webm.finish());
        assert_eq!(&bytes[..4], &[0x1a, 0x45, 0xdf, 0xa3]);

        let (mut clusters, mut video, mut audio, mut keyframes, mut size, mut codecs) = (Vec::new(), 0, 0, 0, (0, 0), Vec::new());
        for tag in WebmIterator::new(std::io::Cursor::new(bytes), &[]) {
            match tag.expect("well-formed WebM") {
                MatroskaSpec::Timestamp(t) => clusters.push(t),
                MatroskaSpec::CodecID(id) => codecs.push(id),
                MatroskaSpec::PixelWidth(w) => size.0 = w,
                MatroskaSpec::PixelHeight(h) => size.1 = h,
                MatroskaSpec::SimpleBlock(data) => {
                    let block = SimpleBlock::try_from(&data).unwrap();
                    if block.track == VIDEO_TRACK { video += 1 } else { audio += 1 }
                    keyframes += usize::from(block.track == VIDEO_TRACK && block.keyframe);
                }
                _ => {}
            }
        }
        assert_eq!(codecs, ["V_VP8", "A_OPUS"]);
        assert_eq!(size, (640, 480));
        assert_eq!(clusters, [0, 1_500], "one cluster per keyframe");
        assert_eq!((video, audio, keyframes), (50, 150, 2));
    }

    #[test]
    fn an_h264_keyframe_gives_its_size_and_configuration_and_frames_become_length_prefixed() {
        // x264's baseline SPS of 352x288 and its PPS, and the start of an IDR slice, as Annex B.
        let sps = [
            0x67, 0x42, 0xc0, 0x0c, 0xd9, 0x01, 0x60, 0x96, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0x08, 0x3c,
            0x50, 0xa9, 0x20,
        ];
        let pps = [0x68, 0xcb, 0x83, 0xcb, 0x20];
        let idr = [0x65, 0x88, 0x84, 0x00, 0x33];
        let mut frame = Vec::new();
        for nal in [&sps[..], &pps[..], &idr[..]] {
            frame.extend_from_slice(&[0, 0, 0, 1]);
            frame.extend_from_slice(nal);
        }
        let (camera, width, height) = first_keyframe(&frame, true).expect("a keyframe");
        assert_eq!((width, height), (352, 288));
        let Camera::H264 { avcc } = &camera else { panic!("H.264") };
        assert_eq!(&avcc[..4], &[1, 0x42, 0xc0, 0x0c]);
        assert_eq!(camera.media_type(), "video/x-matroska");
        let prefixed = length_prefixed(&annex_b(&frame));
        assert_eq!(&prefixed[..4], &(sps.len() as u32).to_be_bytes());
        assert_eq!(prefixed.len(), frame.len(), "each 4-byte start code became a 4-byte length");
        assert!(first_keyframe(&[0, 0, 0, 1, 0x41, 0x9a], true).is_none(), "not a keyframe");
        // High profile, an odd size (cropped from whole macroblocks).
        let high = [
            0x67, 0x64, 0x00, 0x0c, 0xac, 0xd9, 0x41, 0x60, 0x97, 0xaa, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00,
            0x08, 0x3c, 0x50, 0xa6, 0x58,
        ];
        assert_eq!(sps_size(&high), Some((350, 286)));
    }

    #[test]
    fn camera_frames_from_the_network_never_panic_the_parsers() {
        // A client controls these bytes: any of them must give an answer, not a panic.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && len > 8 {
                // Shaped like a keyframe with parameter sets, so the SPS parser runs on random bits.
                frame[..4].copy_from_slice(&[0, 0, 0, 1]);
                frame[4] = 0x67;
                frame.extend_from_slice(&[0, 0, 0, 1, 0x68, 1, 0, 0, 0, 1, 0x65, 1]);
            }
            let _ = first_keyframe(&frame, round % 3 != 0);
            let mut webm = WebmMux::new(Camera::H264 { avcc: vec![1] }, 16, 16);
            webm.video(&frame, round as u64);
            let _ = length_prefixed(&annex_b(&frame));
        }
    }
}
