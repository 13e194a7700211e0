//! `OpusDecoder`: Opus packets (as they arrive in RTP) to 48 kHz mono PCM. A lost packet is concealed by Opus's
//! own packet-loss concealment, so the timeline of the output stays continuous.

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

    #[test]
    fn a_garbage_packet_is_an_error_not_a_crash() {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        // TOC byte announcing code 3 (arbitrary frame count) with a frame count of zero: invalid.
        assert!(decoder.decode(&[0x03, 0x00], &mut out).is_err());
        assert!(out.is_empty());
    }
}
