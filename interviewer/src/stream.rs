//! `ReplyStream`: an OpenAI-compatible streamed chat reply (server-sent events, `data: {...}` lines ending in
//! `data: [DONE]`) as its bytes arrive from the network, in chunks cut anywhere, even inside a character.
//! Sans-IO: the server's client reads the socket and keeps the clocks.

use serde_json::Value;

/// The longest event line and the longest reply taken: a judgement is a few hundred words, so anything near
/// these is an endpoint gone wrong, and it must not grow the server's memory.
const MAX_LINE: usize = 256 * 1024;
const MAX_REPLY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("the endpoint refused: {0}")]
    Refused(String),
    #[error("malformed stream: {0}")]
    Malformed(String),
}

#[derive(Debug, Default)]
pub struct ReplyStream {
    /// Bytes of the line still open (the chunk ended before its newline).
    pending: Vec<u8>,
    content: String,
    done: bool,
}

impl ReplyStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk; returns the whole reply once the stream says it is done. Chunks after that are
    /// ignored; an error ends the stream.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<String>, StreamError> {
        if self.done {
            return Ok(None);
        }
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        let mut reply = None;
        while let Some(end) = self.pending[start..].iter().position(|b| *b == b'\n') {
            // Checked for whole lines too, so that the outcome does not depend on where the chunks were cut.
            if end > MAX_LINE {
                self.done = true;
                return Err(too_long());
            }
            let line = String::from_utf8_lossy(&self.pending[start..start + end]).into_owned();
            start += end + 1;
            if let Some(whole) = self.line(&line).inspect_err(|_| self.done = true)? {
                self.done = true;
                reply = Some(whole);
                break;
            }
        }
        self.pending.drain(..start);
        if !self.done && self.pending.len() > MAX_LINE {
            self.done = true;
            return Err(too_long());
        }
        Ok(reply)
    }

    /// The reply so far.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// One event line: `Some(reply)` once the stream is done.
    fn line(&mut self, line: &str) -> Result<Option<String>, StreamError> {
        let Some(data) = line.trim().strip_prefix("data:").map(str::trim) else { return Ok(None) };
        if data == "[DONE]" {
            return Ok(Some(std::mem::take(&mut self.content)));
        }
        let value: Value = serde_json::from_str(data).map_err(|e| StreamError::Malformed(e.to_string()))?;
        if let Some(error) = value.get("error") {
            return Err(StreamError::Refused(error.to_string()));
        }
        let delta = &value["choices"][0]["delta"];
        if let Some(refusal) = delta["refusal"].as_str().filter(|r| !r.is_empty()) {
            return Err(StreamError::Refused(refusal.to_string()));
        }
        if let Some(piece) = delta["content"].as_str() {
            if self.content.len() + piece.len() > MAX_REPLY {
                return Err(StreamError::Malformed(format!("a reply over {MAX_REPLY} bytes")));
            }
            self.content.push_str(piece);
        }
        Ok(None)
    }
}

fn too_long() -> StreamError {
    StreamError::Malformed(format!("an event line over {MAX_LINE} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(content: &str) -> String {
        format!("data: {}\n\n", serde_json::json!({"choices": [{"delta": {"content": content}}]}))
    }

    #[test]
    fn events_accumulate_content_until_done() {
        let mut stream = ReplyStream::new();
        assert_eq!(stream.push(event("{\"a\"").as_bytes()), Ok(None));
        assert_eq!(stream.push(b": keep-alive\n"), Ok(None));
        assert_eq!(stream.push(event(":1}").as_bytes()), Ok(None));
        assert_eq!(stream.content(), r#"{"a":1}"#);
        assert_eq!(stream.push(b"data: [DONE]\n").unwrap().as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(stream.push(event("more").as_bytes()), Ok(None), "nothing after the end");
    }

    #[test]
    fn chunks_cut_anywhere_even_inside_a_character_give_the_same_reply() {
        let whole = format!("{}{}data: [DONE]\n", event("{\"note\": \"café — naïve "), event("résumé\"}"));
        let expected = ReplyStream::new().push(whole.as_bytes()).unwrap().unwrap();
        assert!(expected.contains("café — naïve résumé"));
        for size in 1..8 {
            let mut stream = ReplyStream::new();
            let mut got = None;
            for chunk in whole.as_bytes().chunks(size) {
                if let Some(reply) = stream.push(chunk).unwrap() {
                    got = Some(reply);
                }
            }
            assert_eq!(got.as_deref(), Some(expected.as_str()), "chunks of {size} bytes");
        }
    }

    #[test]
    fn refusals_errors_garbage_and_floods_end_the_stream() {
        let refusal = b"data: {\"choices\":[{\"delta\":{\"refusal\":\"I can't help with that.\"}}]}\n";
        assert!(matches!(ReplyStream::new().push(refusal), Err(StreamError::Refused(_))));
        assert!(matches!(ReplyStream::new().push(b"data: {\"error\":{\"message\":\"overloaded\"}}\n"), Err(StreamError::Refused(_))));
        let mut garbage = ReplyStream::new();
        assert!(matches!(garbage.push(b"data: {not json\n"), Err(StreamError::Malformed(_))));
        assert_eq!(garbage.push(b"data: [DONE]\n"), Ok(None), "a broken stream stays ended");
        let mut endless = ReplyStream::new();
        let line = vec![b'x'; MAX_LINE / 4];
        let ended = (0..8).map(|_| endless.push(&line)).find(Result::is_err);
        assert!(matches!(ended, Some(Err(StreamError::Malformed(_)))), "a line without end is cut off");
        let mut long = ReplyStream::new();
        let piece = "y".repeat(1000);
        let ended = (0..100).map(|_| long.push(event(&piece).as_bytes())).find(Result::is_err);
        assert!(matches!(ended, Some(Err(StreamError::Malformed(_)))), "a reply without end is cut off");
    }
}
