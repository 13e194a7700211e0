//! Recording a consenting candidate's session as it happens: the candidate's voice and the interviewer's, each
//! as Ogg Opus without transcoding (the packets as received or sent), sealed to disk every couple of seconds
//! (`recordings::Tape`). The task listens to the session's fanout like an observer, so nothing here touches
//! the RTP or inference paths; a recorder that falls too far behind loses packets (counted), never the media.
//! Gaps (lost packets, the interviewer's silences) are filled with empty Opus frames, so a recording keeps the
//! session's timeline and a word's time in the transcript is its time in the recording.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::events::EventSink;
use crate::domain::{InterviewId, UserId};
use crate::recordings::{Recordings, Source, Tape};
use crate::store::Store;

/// Opus runs at 48 kHz whatever the input rate; Ogg granules count these samples.
const RATE: u64 = 48_000;
const FRAME: u64 = RATE / 50;
/// An Opus packet of one 20 ms CELT frame with no data: decoders conceal it as silence.
const EMPTY_FRAME: [u8; 1] = [0xF8];
/// Media is sealed to disk this often: a crash loses at most this much.
const SEAL_EVERY: Duration = Duration::from_secs(2);
/// Packets per Ogg page (about a second of 20 ms packets).
const PAGE_PACKETS: u32 = 50;
/// A forward jump of the RTP clock beyond this is a new stream, not a gap to fill.
const MAX_GAP: u64 = 10 * 60 * RATE;

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
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels: mono, as WebRTC sends and Piper speaks
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip: none, so granules are the session's clock
        head.extend_from_slice(&(RATE as u32).to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0
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
}

/// One recording of this session: its muxer and its sealed file, opened at the first packet.
struct Track {
    source: Source,
    ogg: Option<OggOpus>,
    tape: Option<Tape>,
    failed: bool,
}

impl Track {
    fn new(source: Source) -> Self {
        Self { source, ogg: None, tape: None, failed: false }
    }

    async fn open(&mut self, rec: &Taping) {
        if self.tape.is_some() || self.failed {
            return;
        }
        match rec.recordings.start(rec.interview, rec.owner, self.source, "audio/ogg", rec.events.t_ms()).await {
            Ok(tape) => {
                self.ogg = Some(OggOpus::new(uuid::Uuid::new_v4().as_u128() as u32));
                self.tape = Some(tape);
            }
            Err(e) => self.fail(rec, &e.to_string()),
        }
    }

    fn fail(&mut self, rec: &Taping, error: &str) {
        tracing::error!(interview = %rec.interview, source = self.source.as_str(), error, "recording stopped");
        rec.recordings_metric("failed");
        (self.failed, self.ogg, self.tape) = (true, None, None);
    }

    async fn seal(&mut self, rec: &Taping) {
        let (Some(ogg), Some(tape)) = (self.ogg.as_mut(), self.tape.as_mut()) else { return };
        let data = ogg.take();
        if data.is_empty() {
            return;
        }
        if let Err(e) = tape.append(data, ogg.duration_ms()).await {
            self.fail(rec, &e.to_string());
        }
    }

    async fn finish(mut self, rec: &Taping) {
        let (Some(ogg), Some(mut tape)) = (self.ogg.take(), self.tape.take()) else { return };
        let duration = ogg.duration_ms() + 20;
        let result = match tape.append(ogg.finish(), duration).await {
            Ok(()) => tape.finish(duration).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.fail(rec, &e.to_string());
        }
    }
}

/// What the recording task needs of its session.
pub struct Taping {
    pub interview: InterviewId,
    pub owner: UserId,
    pub store: Store,
    pub recordings: Arc<Recordings>,
    pub events: EventSink,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Taping {
    fn recordings_metric(&self, event: &str) {
        self.metrics.recordings.with_label_values(&[event]).inc();
    }

    /// Records until `stop` if the candidate consented; otherwise returns at once and nothing is written.
    pub async fn run(
        self,
        mut audio: broadcast::Receiver<rtc::rtp::Packet>,
        mut voice: broadcast::Receiver<Bytes>,
        stop: CancellationToken,
    ) {
        match self.store.interview(self.interview).await {
            Ok(Some(interview)) if interview.recording_consent_at.is_some() => {}
            Ok(_) => return,
            Err(e) => {
                tracing::error!(interview = %self.interview, error = %e, "recording consent unknown: not recording");
                return;
            }
        }
        let (mut candidate, mut interviewer) = (Track::new(Source::Candidate), Track::new(Source::Interviewer));
        // The candidate's packets are placed by their RTP clock, the interviewer's by when they were sent.
        let mut rtp_clock: Option<(u32, u64)> = None;
        let mut voice_start: Option<Instant> = None;
        let mut seal = tokio::time::interval(SEAL_EVERY);
        seal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                packet = audio.recv() => match packet {
                    Ok(packet) => {
                        candidate.open(&self).await;
                        let Some(ogg) = candidate.ogg.as_mut() else { continue };
                        let ts = packet.header.timestamp;
                        let at = match rtp_clock {
                            None => ogg.granule,
                            Some((last_ts, last_at)) => {
                                let step = ts.wrapping_sub(last_ts) as i32;
                                if step <= 0 || step as u64 > MAX_GAP { continue } // late, repeated, or a jump
                                last_at + step as u64
                            }
                        };
                        if ogg.push(&packet.payload, Some(at)) {
                            rtp_clock = Some((ts, at));
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "recording fell behind the candidate's audio"),
                    Err(RecvError::Closed) => break,
                },
                frame = voice.recv() => match frame {
                    Ok(frame) => {
                        interviewer.open(&self).await;
                        let Some(ogg) = interviewer.ogg.as_mut() else { continue };
                        let started = *voice_start.get_or_insert_with(Instant::now);
                        let at = started.elapsed().as_millis() as u64 * RATE / 1000;
                        // Frames come paced; only a silence longer than a frame or two is a gap.
                        ogg.push(&frame, (at > ogg.granule + 2 * FRAME).then_some(at));
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!(lost = n, "recording fell behind the interviewer's voice"),
                    Err(RecvError::Closed) => break,
                },
                _ = seal.tick() => {
                    candidate.seal(&self).await;
                    interviewer.seal(&self).await;
                }
                () = stop.cancelled() => break,
            }
        }
        candidate.finish(&self).await;
        interviewer.finish(&self).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
