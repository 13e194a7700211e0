//! `H264Depacketizer`: rtc-rtp's H.264 depacketizer with the framing of STAP-A packets (several NAL units in
//! one packet, each behind a 2-byte length) checked first. rtc-rtp 0.21 reads past the end of a packet whose
//! last length field is cut short and panics: a stranger's packet must not do that (found by `rtp_video`
//! fuzzing).

use bytes::Bytes;
use rtc_rtp::codec::h264::H264Packet;
use rtc_rtp::packetizer::Depacketizer;
use rtc_shared::error::{Error, Result};

/// RFC 6184 section 5.7.1.
const STAP_A: u8 = 24;

#[derive(Debug, Default)]
pub struct H264Depacketizer(H264Packet);

impl Depacketizer for H264Depacketizer {
    fn depacketize(&mut self, packet: &Bytes) -> Result<Bytes> {
        if packet.first().is_some_and(|b| b & 0x1f == STAP_A) && !whole_units(&packet[1..]) {
            return Err(Error::ErrShortPacket);
        }
        self.0.depacketize(packet)
    }

    fn is_partition_head(&self, payload: &Bytes) -> bool {
        self.0.is_partition_head(payload)
    }

    fn is_partition_tail(&self, marker: bool, payload: &Bytes) -> bool {
        self.0.is_partition_tail(marker, payload)
    }
}

/// Whether `units` is a run of (2-byte length, unit of that length) to its very end.
fn whole_units(mut units: &[u8]) -> bool {
    while !units.is_empty() {
        let [hi, lo, rest @ ..] = units else { return false };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if rest.len() < len {
            return false;
        }
        units = &rest[len..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stap_a_packet_cut_inside_a_length_is_an_error_and_not_a_panic() {
        let cut = Bytes::from_static(&[0x18, 0x00, 0x02, 0x67, 0x42, 0x00]);
        assert!(H264Depacketizer::default().depacketize(&cut).is_err());
        let whole = Bytes::from_static(&[0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68]);
        assert_eq!(H264Depacketizer::default().depacketize(&whole).unwrap().as_ref(), [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68]);
        let single = Bytes::from_static(&[0x65, 0x88, 0x84]);
        assert_eq!(H264Depacketizer::default().depacketize(&single).unwrap().as_ref(), [0, 0, 0, 1, 0x65, 0x88, 0x84]);
    }
}
