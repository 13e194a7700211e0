//! `FrameAssembler`: video RTP packets in (in any order, with gaps), whole encoded frames out, in order.
//! Sans-IO: no clock, bounded by a packet count.
//!
//! A frame is the run of packets from a partition head to a partition tail (the codec's depacketizer says which
//! is which; the tail usually carries the marker bit), all with one timestamp and consecutive sequence numbers.
//! Packets wait in a small ordered map until their frame is complete. When a packet never comes (lost, and not
//! retransmitted in time), the frame cannot be completed: once `MAX_HELD` packets wait behind the gap, the broken
//! frame is dropped, reading resumes at the next frame's head, and the loss is reported so that the caller asks
//! for a keyframe (later delta frames are undecodable without the lost one).
//!
//! Why not webrtc's `SampleBuilder`: it indexes a ring of all 65,536 sequence numbers, which costs 12 MB per
//! video track; this holds only the packets waiting.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use rtc_rtp::Packet;
use rtc_rtp::packetizer::Depacketizer;

/// Packets held back behind a gap before the broken frame is given up (about ten VGA frames).
const MAX_HELD: usize = 128;

pub struct FrameAssembler<D> {
    depacketizer: D,
    /// Waiting packets by extended (wrap-free) sequence number.
    held: BTreeMap<u64, Packet>,
    /// Where the next frame starts, once the first head has arrived.
    next: Option<u64>,
    /// The highest extended sequence number seen, to extend the next 16-bit one.
    highest: Option<u64>,
    /// Frames given up since the caller last asked.
    lost: u64,
}

impl<D: Depacketizer> FrameAssembler<D> {
    pub fn new(depacketizer: D) -> Self {
        Self { depacketizer, held: BTreeMap::new(), next: None, highest: None, lost: 0 }
    }

    /// Adds one packet; returns the frames it completed, oldest first.
    pub fn push(&mut self, packet: Packet) -> Vec<Bytes> {
        let seq = self.extend(packet.header.sequence_number);
        if self.next.is_some_and(|next| seq < next) {
            return Vec::new(); // late or repeated: its frame is already out or given up
        }
        self.held.insert(seq, packet);
        let mut frames = Vec::new();
        loop {
            while let Some(frame) = self.pop_frame() {
                frames.extend(frame);
            }
            if self.held.len() <= MAX_HELD || !self.skip_broken_frame() {
                return frames;
            }
        }
    }

    /// Frames given up since the last call (each needs a keyframe to recover from).
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// The 16-bit sequence number as the nearest extended one to the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start mid-range, so that packets just before the first one still extend below it.
            let first = (1 << 32) + u64::from(seq);
            self.highest = Some(first);
            return first;
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let extended = highest.saturating_add_signed(delta);
        self.highest = Some(highest.max(extended));
        extended
    }

    /// The next frame, if all its packets are here: `Some(None)` when it was complete but undecodable
    /// (dropped, counted as lost), `None` when it is not complete yet.
    fn pop_frame(&mut self) -> Option<Option<Bytes>> {
        let start = match self.next {
            Some(next) => next,
            None => {
                // Before the first frame: wait for a head, drop anything older.
                let (&seq, _) = self.held.iter().find(|(_, p)| self.depacketizer.is_partition_head(&p.payload))?;
                self.held.retain(|&s, _| s >= seq);
                self.next = Some(seq);
                seq
            }
        };
        let timestamp = self.held.get(&start)?.header.timestamp;
        let mut end = start;
        loop {
            let packet = self.held.get(&end)?;
            if packet.header.timestamp != timestamp {
                // The tail of this frame never came, but the next frame has started: this one is broken.
                self.drop_until(end);
                return Some(None);
            }
            if self.depacketizer.is_partition_tail(packet.header.marker, &packet.payload) {
                break;
            }
            end += 1;
        }
        let head_ok = self.depacketizer.is_partition_head(&self.held[&start].payload);
        let mut frame = BytesMut::new();
        let mut decodable = head_ok;
        for seq in start..=end {
            let packet = self.held.remove(&seq).expect("checked above");
            if decodable {
                match self.depacketizer.depacketize(&packet.payload) {
                    Ok(data) => frame.extend_from_slice(&data),
                    Err(_) => decodable = false,
                }
            }
        }
        self.next = Some(end + 1);
        if decodable {
            Some(Some(frame.freeze()))
        } else {
            self.lost += 1;
            Some(None)
        }
    }

    /// Gives up the frame stuck behind a gap: reading resumes at the first head after it. False when no head is
    /// held yet (keep waiting, within the bound: the oldest packets go).
    fn skip_broken_frame(&mut self) -> bool {
        let after = self.next.unwrap_or(0);
        let head = self
            .held
            .iter()
            .skip_while(|(seq, _)| **seq <= after)
            .find(|(_, p)| self.depacketizer.is_partition_head(&p.payload))
            .map(|(&seq, _)| seq);
        match head {
            Some(seq) => {
                self.drop_until(seq);
                true
            }
            None => {
                while self.held.len() > MAX_HELD {
                    self.held.pop_first();
                }
                self.next = self.held.keys().next().copied();
                false
            }
        }
    }

    /// Drops the frame before `seq` (counted as lost) and starts reading there.
    fn drop_until(&mut self, seq: u64) {
        self.held.retain(|&s, _| s >= seq);
        self.next = Some(seq);
        self.lost += 1;
    }
}

#[cfg(test)]
mod tests {
    use rtc_rtp::codec::vp8::Vp8Packet;
    use rtc_rtp::header::Header;

    use super::*;

    /// A VP8 packet: the payload descriptor's S bit marks a frame's first packet; the marker bit its last.
    fn vp8(seq: u16, timestamp: u32, first: bool, last: bool, data: &[u8]) -> Packet {
        let mut payload = vec![if first { 0x10 } else { 0x00 }];
        payload.extend_from_slice(data);
        let header = Header { sequence_number: seq, timestamp, marker: last, ..Default::default() };
        Packet { header, payload: Bytes::from(payload) }
    }

    /// Frame `n` in three packets, starting at sequence number `seq`.
    fn frame(seq: u16, n: u8) -> Vec<Packet> {
        let ts = u32::from(n) * 6000;
        let part = |k: u8| [n, k, n, k];
        vec![
            vp8(seq, ts, true, false, &part(1)),
            vp8(seq.wrapping_add(1), ts, false, false, &part(2)),
            vp8(seq.wrapping_add(2), ts, false, true, &part(3)),
        ]
    }

    /// What frame `n` reassembles to.
    fn whole(n: u8) -> Vec<u8> {
        (1..=3).flat_map(|k| [n, k, n, k]).collect()
    }

    fn assemble(packets: Vec<Packet>) -> (Vec<Vec<u8>>, u64) {
        let mut assembler = FrameAssembler::new(Vp8Packet::default());
        let frames = packets.into_iter().flat_map(|p| assembler.push(p)).map(|f| f.to_vec()).collect();
        (frames, assembler.take_lost())
    }

    #[test]
    fn packets_in_order_make_whole_frames_across_the_sequence_wrap() {
        let packets: Vec<Packet> = (0..4).flat_map(|n| frame(65_530_u16.wrapping_add(3 * u16::from(n)), n)).collect();
        let (frames, lost) = assemble(packets);
        assert_eq!(frames, (0..4).map(whole).collect::<Vec<_>>());
        assert_eq!(lost, 0);
    }

    #[test]
    fn reordered_packets_wait_for_each_other() {
        let mut packets: Vec<Packet> = (0..3).flat_map(|n| frame(100 + 3 * u16::from(n), n)).collect();
        packets.swap(1, 4); // frame 0's middle arrives after frame 1's middle
        packets.swap(0, 2);
        let (frames, lost) = assemble(packets);
        assert_eq!(frames, (0..3).map(whole).collect::<Vec<_>>());
        assert_eq!(lost, 0);
    }

    #[test]
    fn a_frame_whose_packet_never_comes_is_given_up_and_reported() {
        let mut packets: Vec<Packet> = (0..60).flat_map(|n| frame(3 * u16::from(n), n)).collect();
        packets.remove(4); // frame 1's middle packet is lost
        let (frames, lost) = assemble(packets);
        assert_eq!(lost, 1, "one frame given up");
        assert_eq!(frames[0], whole(0));
        assert_eq!(frames[1], whole(2), "reading resumed at the next frame");
        assert_eq!(frames.len(), 59, "every other frame comes out once the gap is given up");
    }

    #[test]
    fn a_missing_tail_is_found_when_the_next_frame_starts() {
        let mut packets: Vec<Packet> = (0..3).flat_map(|n| frame(10 + 3 * u16::from(n), n)).collect();
        packets[2] = vp8(12, 0, false, false, &[0, 3, 0, 3]); // frame 0 ends without its marker
        let (frames, lost) = assemble(packets);
        assert_eq!(frames, vec![whole(1), whole(2)]);
        assert_eq!(lost, 1);
    }

    #[test]
    fn packets_before_the_first_head_and_late_repeats_are_dropped() {
        let mut packets = vec![vp8(9, 0, false, true, &[9, 9, 9, 9])]; // the tail of a frame that started before we joined
        packets.extend(frame(10, 1));
        packets.push(vp8(11, 6000, false, false, &[1, 2, 1, 2])); // a retransmission after its frame is out
        packets.extend(frame(13, 2));
        let (frames, lost) = assemble(packets);
        assert_eq!(frames, vec![whole(1), whole(2)]);
        assert_eq!(lost, 0);
    }

    #[test]
    fn garbage_packets_hold_at_most_the_bound() {
        let mut assembler = FrameAssembler::new(Vp8Packet::default());
        for seq in 0..1000_u16 {
            let header =
                Header { sequence_number: seq.wrapping_mul(7919), timestamp: u32::from(seq), ..Default::default() };
            assembler.push(Packet { header, payload: Bytes::from(vec![0xff; 3]) });
            assert!(assembler.held.len() <= MAX_HELD + 1);
        }
    }
}
