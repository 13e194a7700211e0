//! `IceCandidate`: a trickled candidate in the browser's `RTCIceCandidateInit` shape, checked, and the rule for
//! which candidates the ICE agent gets. mDNS (`.local`) host candidates are ignored: the server cannot resolve
//! them, and the peer-reflexive candidate that appears once the browser's checks arrive replaces them.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::limits::MAX_CANDIDATE_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// `candidate:...` attribute value; empty means end of candidates.
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "sdpMLineIndex")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// What to do with a remote candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateUse {
    Add,
    /// The remote has no more candidates.
    EndOfCandidates,
    /// Harmless but useless; the reason is logged.
    Ignore(&'static str),
}

impl IceCandidate {
    /// Checks the shape of the candidate line: `candidate:<foundation> <component> <transport> <priority>
    /// <address> <port> typ <type> ...`.
    pub fn validate(&self) -> Result<CandidateUse, ProtocolError> {
        let invalid = |why: &str| ProtocolError::InvalidCandidate(why.to_string());
        let line = self.candidate.trim();
        if line.is_empty() {
            return Ok(CandidateUse::EndOfCandidates);
        }
        if line.len() > MAX_CANDIDATE_BYTES {
            return Err(invalid("longer than 1 KiB"));
        }
        if self.sdp_mid.is_none() && self.sdp_m_line_index.is_none() {
            return Err(invalid("needs sdpMid or sdpMLineIndex"));
        }
        let body = line.strip_prefix("a=").unwrap_or(line);
        let body = body.strip_prefix("candidate:").ok_or_else(|| invalid("must start with candidate:"))?;
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() < 8 || fields[6] != "typ" {
            return Err(invalid("expected foundation, component, transport, priority, address, port, typ, type"));
        }
        if !fields[1].chars().all(|c| c.is_ascii_digit()) || fields[3].parse::<u32>().is_err() {
            return Err(invalid("component and priority must be numbers"));
        }
        if fields[5].parse::<u16>().is_err() {
            return Err(invalid("port must be a number from 0 to 65535"));
        }
        if !["host", "srflx", "prflx", "relay"].contains(&fields[7]) {
            return Err(invalid("unknown candidate type"));
        }
        if fields[4].ends_with(".local") {
            return Ok(CandidateUse::Ignore("mDNS host candidate"));
        }
        if !fields[2].eq_ignore_ascii_case("udp") {
            return Ok(CandidateUse::Ignore("only UDP candidates are used"));
        }
        Ok(CandidateUse::Add)
    }
}

/// Replaces the address of a host candidate line (`candidate:...` or `a=candidate:...`) with `address`; other
/// lines and other candidate types come back unchanged. Used to announce a public IP behind a 1:1 NAT.
pub fn rewrite_host_address(line: &str, address: &str) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    let is_candidate = fields.first().is_some_and(|f| f.starts_with("candidate:") || f.starts_with("a=candidate:"));
    if !is_candidate || fields.len() < 8 || fields[6] != "typ" || fields[7] != "host" {
        return line.to_string();
    }
    let mut fields = fields;
    fields[4] = address;
    fields.join(" ")
}

/// `rewrite_host_address` on every line of an SDP, keeping its line endings.
pub fn rewrite_sdp_host_addresses(sdp: &str, address: &str) -> String {
    sdp.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\r', '\n']);
            format!("{}{}", rewrite_host_address(body, address), &line[body.len()..])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(line: &str) -> IceCandidate {
        IceCandidate {
            candidate: line.into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn host_reflexive_and_relay_candidates_are_added() {
        for line in [
            "candidate:842163049 1 udp 1677729535 127.0.0.1 54321 typ host generation 0",
            "candidate:1 1 UDP 1694498815 203.0.113.4 40000 typ srflx raddr 0.0.0.0 rport 0",
            "candidate:2 1 udp 1853824767 198.51.100.9 50000 typ prflx",
            "a=candidate:3 1 udp 41885439 192.0.2.1 3478 typ relay raddr 203.0.113.4 rport 40000",
        ] {
            assert_eq!(candidate(line).validate().unwrap(), CandidateUse::Add, "{line}");
        }
    }

    #[test]
    fn mdns_candidates_are_ignored_and_an_empty_one_ends_the_list() {
        let mdns = candidate("candidate:1 1 udp 2122260223 4f6b7e1d-0c3a-4d35-9a57-0c2d1f9d3a1b.local 53937 typ host");
        assert_eq!(mdns.validate().unwrap(), CandidateUse::Ignore("mDNS host candidate"));
        assert_eq!(candidate("").validate().unwrap(), CandidateUse::EndOfCandidates);
    }

    #[test]
    fn host_addresses_are_rewritten_and_nothing_else() {
        let host = "candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host";
        assert_eq!(
            rewrite_host_address(host, "203.0.113.9"),
            "candidate:1 1 udp 2130706431 203.0.113.9 50000 typ host"
        );
        let srflx = "candidate:2 1 udp 1694498815 198.51.100.1 50000 typ srflx raddr 10.0.0.5 rport 50000";
        assert_eq!(rewrite_host_address(srflx, "203.0.113.9"), srflx);
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\na=mid:0\r\n";
        assert_eq!(
            rewrite_sdp_host_addresses(sdp, "203.0.113.9"),
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.9 50000 typ host\r\na=mid:0\r\n"
        );
    }

    #[test]
    fn malformed_candidates_are_refused() {
        for line in [
            "hello",
            "candidate:1 1 udp",
            "candidate:1 x udp 1 1.2.3.4 5 typ host",
            "candidate:1 1 udp 1 1.2.3.4 99999 typ host",
            "candidate:1 1 udp 1 1.2.3.4 5 typ weird",
        ] {
            assert!(matches!(candidate(line).validate(), Err(ProtocolError::InvalidCandidate(_))), "{line}");
        }
        let mut no_mid = candidate("candidate:1 1 udp 1 1.2.3.4 5 typ host");
        no_mid.sdp_mid = None;
        no_mid.sdp_m_line_index = None;
        assert!(no_mid.validate().is_err());
    }
}
