//! `OpusDecoder`: Opus packets (as they arrive in RTP) to 48 kHz mono PCM. A lost packet is rebuilt from the
//! forward error correction the next packet carries (Opus in-band FEC, which browsers send on lossy links), or
//! else concealed by Opus's packet-loss concealment, so the timeline of the output stays continuous.

use super::OPUS_RATE;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

pub struct OpusDecoder {
    decoder: opus::Decoder,
    /// Scratch space for the longest Opus packet (120 ms at 48 kHz).
    buffer: Vec<f32>,
    /// Samples per channel of the last good packet, used to size concealment.
    last_frame: usize,
}

impl OpusDecoder {
    /// 120 ms, the longest frame Opus allows.
    const MAX_FRAME: usize = OPUS_RATE as usize * 120 / 1000;

    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self {
            decoder: opus::Decoder::new(OPUS_RATE, opus::Channels::Mono)?,
            buffer: vec![0.0; Self::MAX_FRAME],
            last_frame: OPUS_RATE as usize / 50,
        })
    }

    /// Decodes one packet, appending 48 kHz mono samples in [-1, 1] to `out`. Returns how many were added.
    /// A corrupt packet is an error and leaves `out` untouched; the decoder stays usable.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<f32>) -> Result<usize, DecodeError> {
        let n = self.decoder.decode_float(packet, &mut self.buffer, false)?;
        self.last_frame = n;
        out.extend_from_slice(&self.buffer[..n]);
        Ok(n)
    }

    /// Conceals one lost packet of the last packet's length.
    pub fn conceal(&mut self, out: &mut Vec<f32>) -> Result<usize, DecodeError> {
        let n = self.decoder.decode_float(&[], &mut self.buffer[..self.last_frame], false)?;
        out.extend_from_slice(&self.buffer[..n]);
        Ok(n)
    }

    /// Rebuilds the packet lost just before `next` from the redundancy `next` carries, or conceals it when `next`
    /// carries none. `next` itself is decoded after, with `decode`.
    pub fn recover(&mut self, next: &[u8], out: &mut Vec<f32>) -> Result<usize, DecodeError> {
        let n = self.decoder.decode_float(next, &mut self.buffer[..self.last_frame], true)?;
        out.extend_from_slice(&self.buffer[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_tone_decodes_to_the_same_length() {
        let mut encoder = opus::Encoder::new(OPUS_RATE, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let frame: Vec<f32> = (0..960).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mut packet = vec![0; 1500];
        let len = encoder.encode_float(&frame, &mut packet).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        assert_eq!(decoder.decode(&packet[..len], &mut out).unwrap(), 960);
        assert_eq!(decoder.conceal(&mut out).unwrap(), 960);
        assert_eq!(out.len(), 1920);
    }

    /// A voice-like frame `k`: harmonics of a pitch that moves from frame to frame, so concealment, which
    /// continues the last frame, cannot guess it.
    fn voiced_frame(k: usize) -> Vec<f32> {
        let pitch = 110.0 + 40.0 * ((k % 7) as f32);
        (0..960)
            .map(|i| {
                let t = (k * 960 + i) as f32 / OPUS_RATE as f32;
                (1..6).map(|h| (std::f32::consts::TAU * pitch * h as f32 * t).sin() / h as f32).sum::<f32>() * 0.3
            })
            .collect()
    }

    fn energy(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    #[test]
    fn a_lost_packet_comes_back_from_the_next_packets_redundancy() {
        let mut encoder = opus::Encoder::new(OPUS_RATE, opus::Channels::Mono, opus::Application::Voip).unwrap();
        encoder.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
        encoder.set_inband_fec(true).unwrap();
        encoder.set_packet_loss_perc(20).unwrap();
        let packets: Vec<Vec<u8>> = (0..40)
            .map(|k| {
                let mut packet = vec![0; 1500];
                let len = encoder.encode_float(&voiced_frame(k), &mut packet).unwrap();
                packet.truncate(len);
                packet
            })
            .collect();
        // What each frame decodes to when nothing is lost.
        let mut clean = OpusDecoder::new().unwrap();
        let mut reference = Vec::new();
        for packet in &packets {
            clean.decode(packet, &mut reference).unwrap();
        }
        let lost = 30;
        let (mut recovered, mut concealed) = (Vec::new(), Vec::new());
        let (mut with_fec, mut without) = (OpusDecoder::new().unwrap(), OpusDecoder::new().unwrap());
        for packet in &packets[..lost] {
            with_fec.decode(packet, &mut Vec::new()).unwrap();
            without.decode(packet, &mut Vec::new()).unwrap();
        }
        assert_eq!(with_fec.recover(&packets[lost + 1], &mut recovered).unwrap(), 960);
        assert_eq!(without.conceal(&mut concealed).unwrap(), 960);
        let truth = &reference[lost * 960..(lost + 1) * 960];
        let (fec_error, plc_error) = (energy(&recovered, truth), energy(&concealed, truth));
        assert!(fec_error * 4.0 < plc_error, "rebuilt {fec_error} vs concealed {plc_error}");
    }

    #[test]
    fn without_redundancy_recovering_conceals() {
        let mut encoder = opus::Encoder::new(OPUS_RATE, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let mut packet = vec![0; 1500];
        let len = encoder.encode_float(&voiced_frame(0), &mut packet).unwrap();
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        decoder.decode(&packet[..len], &mut out).unwrap();
        assert_eq!(decoder.recover(&packet[..len], &mut out).unwrap(), 960);
        assert_eq!(out.len(), 1920);
    }

    #[test]
    fn a_garbage_packet_is_an_error_not_a_crash() {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        // TOC byte announcing code 3 (arbitrary frame count) with a frame count of zero: invalid.
        assert!(decoder.decode(&[0x03, 0x00], &mut out).is_err());
        assert!(out.is_empty());
    }
}
