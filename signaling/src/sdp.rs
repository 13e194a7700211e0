//! `Sdp`: a session description that passed sanity checks (size, line syntax, the mandatory `v=`, `o=`, `s=` and
//! at least one `m=` line), and `OfferSummary`: what a client's offer asks for. Full SDP semantics are left to the
//! WebRTC stack; this layer refuses garbage early with a clear reason.

use crate::ProtocolError;
use crate::limits::MAX_MESSAGE_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp(String);

impl Sdp {
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let invalid = |why: &str| ProtocolError::InvalidSdp(why.to_string());
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(invalid("longer than 64 KiB"));
        }
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty());
        if lines.next() != Some("v=0") {
            return Err(invalid("must start with v=0"));
        }
        let (mut origin, mut name, mut media) = (false, false, false);
        for (index, line) in lines.enumerate() {
            let bytes = line.as_bytes();
            if bytes.len() < 2 || !bytes[0].is_ascii_lowercase() || bytes[1] != b'=' {
                return Err(ProtocolError::InvalidSdp(format!("line {} is not of the form x=value", index + 2)));
            }
            if line.chars().any(|c| c.is_control()) {
                return Err(ProtocolError::InvalidSdp(format!("line {} has control characters", index + 2)));
            }
            match bytes[0] {
                b'o' => origin = true,
                b's' => name = true,
                b'm' => media = true,
                _ => {}
            }
        }
        if !origin || !name {
            return Err(invalid("missing the o= or s= line"));
        }
        if !media {
            return Err(invalid("no m= line: nothing to negotiate"));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What an offer asks for, with the rules Candor's offers must meet: an audio section with Opus; video, if
    /// any, with VP8 or H264.
    pub fn summarize_offer(&self) -> Result<OfferSummary, ProtocolError> {
        let mut sections: Vec<MediaSection> = Vec::new();
        let mut candidates = 0;
        for line in self.0.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(m) = line.strip_prefix("m=") {
                let mut fields = m.split_whitespace();
                let kind = fields.next().unwrap_or_default().to_string();
                let port = fields.next().unwrap_or_default();
                sections.push(MediaSection { kind, rejected: port == "0", codecs: Vec::new(), mid: None });
            } else if let Some(section) = sections.last_mut() {
                if let Some(map) = line.strip_prefix("a=rtpmap:") {
                    if let Some(codec) = map.split_whitespace().nth(1).and_then(|c| c.split('/').next()) {
                        section.codecs.push(codec.to_ascii_lowercase());
                    }
                } else if let Some(mid) = line.strip_prefix("a=mid:") {
                    section.mid = Some(mid.trim().to_string());
                } else if line.starts_with("a=candidate:") {
                    candidates += 1;
                }
            }
        }
        if sections.len() > crate::limits::MAX_MEDIA_SECTIONS {
            return Err(ProtocolError::TooManyMediaSections(sections.len()));
        }
        let live = |kind: &str| sections.iter().find(|s| s.kind == kind && !s.rejected).cloned();
        let audio = live("audio").ok_or(ProtocolError::OfferWithoutAudio)?;
        if !audio.codecs.iter().any(|c| c == "opus") {
            return Err(ProtocolError::NoCommonCodec("the audio section does not offer Opus".into()));
        }
        let video = live("video");
        if let Some(video) = &video
            && !video.codecs.iter().any(|c| c == "vp8" || c == "h264")
        {
            return Err(ProtocolError::NoCommonCodec("the video section offers neither VP8 nor H264".into()));
        }
        Ok(OfferSummary { audio, video, data_channel: live("application").is_some(), candidates })
    }
}

/// One `m=` section of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// audio, video or application.
    pub kind: String,
    /// Port 0: the offerer turned this section off.
    pub rejected: bool,
    /// Lower-case codec names from `a=rtpmap`.
    pub codecs: Vec<String>,
    pub mid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    pub audio: MediaSection,
    pub video: Option<MediaSection>,
    pub data_channel: bool,
    /// Candidates already inside the offer: a non-trickle offer has them all.
    pub candidates: usize,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A trimmed Chromium offer: Opus audio, VP8 and H264 video, a data channel.
    pub(crate) const BROWSER_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n";

    #[test]
    fn a_browser_offer_is_summarised() {
        let summary = Sdp::parse(BROWSER_OFFER).unwrap().summarize_offer().unwrap();
        assert_eq!(summary.audio.codecs, ["opus", "pcmu"]);
        assert_eq!(summary.audio.mid.as_deref(), Some("0"));
        assert_eq!(summary.video.unwrap().codecs, ["vp8", "h264"]);
        assert!(summary.data_channel);
        assert_eq!(summary.candidates, 0);
    }

    #[test]
    fn garbage_is_not_sdp() {
        for bad in [
            "",
            "hello",
            "v=1\r\n",
            "v=0\r\no=x\r\ns=-\r\n",
            "v=0\r\no=x\r\ns=-\r\nm=audio 9 X 0\r\nbad line\r\n",
            "v=0\r\ns=-\r\nm=audio 9 X 0\r\n",
            "v=0\r\no=x\r\ns=-\r\nm=audio\u{7} 9 X 0\r\n",
        ] {
            assert!(matches!(Sdp::parse(bad), Err(ProtocolError::InvalidSdp(_))), "{bad:?} passed");
        }
        let huge = format!("v=0\r\no=x\r\ns=-\r\nm=audio 9 X 0\r\n{}", "a=x\r\n".repeat(20_000));
        assert!(Sdp::parse(&huge).is_err());
    }

    #[test]
    fn an_offer_with_more_media_sections_than_taken_is_refused() {
        let extra = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n".repeat(6);
        let err = Sdp::parse(&format!("{BROWSER_OFFER}{extra}")).unwrap().summarize_offer().unwrap_err();
        assert_eq!((err.code(), err), ("too_many_media_sections", ProtocolError::TooManyMediaSections(9)));
        let fits = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n".repeat(5);
        assert!(Sdp::parse(&format!("{BROWSER_OFFER}{fits}")).unwrap().summarize_offer().is_ok());
    }

    #[test]
    fn an_offer_without_audio_is_refused() {
        let no_audio = BROWSER_OFFER.replace("m=audio 9", "m=audio 0");
        let err = Sdp::parse(&no_audio).unwrap().summarize_offer().unwrap_err();
        assert_eq!(err, ProtocolError::OfferWithoutAudio);
        assert_eq!(err.code(), "offer_without_audio");
    }

    #[test]
    fn audio_without_opus_or_video_without_a_known_codec_is_refused() {
        let no_opus = BROWSER_OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 G722/8000");
        assert!(matches!(Sdp::parse(&no_opus).unwrap().summarize_offer(), Err(ProtocolError::NoCommonCodec(_))));
        let av1 = BROWSER_OFFER.replace("VP8/90000", "AV1/90000").replace("H264/90000", "VP9/90000");
        assert!(matches!(Sdp::parse(&av1).unwrap().summarize_offer(), Err(ProtocolError::NoCommonCodec(_))));
    }
}
