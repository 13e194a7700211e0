//! An OpenAI-compatible chat-completions client (vLLM, llama.cpp server, Ollama, Groq, Fireworks...): the
//! judgement is requested with streaming (`stream: true`, server-sent events) and a JSON schema
//! (`response_format`), so a slow first token is noticed early, the spoken decision that opens the reply is
//! handed on as soon as it is complete, and the reply is checked as it completes.
//! Timeouts: the first token within `first_token`, the whole reply within `total`. Any failure marks the
//! endpoint down for a while (`Health`).

use std::time::{Duration, Instant};

use candor_interviewer::brain::{BrainRequest, decision_in};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{Brain, BrainError, Health, OnDecided};

pub struct OpenAiBrain {
    http: reqwest::Client,
    url: String,
    api_key: Option<SecretString>,
    model: String,
    first_token: Duration,
    total: Duration,
    health: Health,
}

impl OpenAiBrain {
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        model: Option<String>,
        first_token: Duration,
        total: Duration,
        retry_after: Duration,
    ) -> Self {
        let base = base_url.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") { base.to_string() } else { format!("{base}/chat/completions") };
        Self {
            http: reqwest::Client::builder().connect_timeout(first_token).build().unwrap_or_default(),
            url,
            api_key,
            model: model.unwrap_or_else(|| "default".into()),
            first_token,
            total,
            health: Health::new(retry_after),
        }
    }

    async fn call(&self, request: &BrainRequest, decided: OnDecided<'_>) -> Result<String, BrainError> {
        let body = json!({
            "model": self.model,
            "messages": request.messages,
            "stream": true,
            "temperature": 0.2,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "strict": true, "schema": request.schema}
            }
        });
        let started = Instant::now();
        let mut post = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            post = post.bearer_auth(key.expose_secret());
        }
        let response = tokio::time::timeout(self.first_token, post.send())
            .await
            .map_err(|_| BrainError::FirstToken(self.first_token.as_millis() as u64))?
            .map_err(|e| BrainError::Connect(e.to_string()))?;
        let status = response.status().as_u16();
        if status >= 300 {
            let body = response.text().await.unwrap_or_default();
            return Err(BrainError::Status { status, body: body.chars().take(300).collect() });
        }
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        let mut content = String::new();
        let mut told = false;
        loop {
            let limit = if content.is_empty() { self.first_token } else { self.total };
            let left = limit.checked_sub(started.elapsed()).unwrap_or_default();
            let chunk = match tokio::time::timeout(left, stream.next()).await {
                Err(_) if content.is_empty() => return Err(BrainError::FirstToken(limit.as_millis() as u64)),
                Err(_) => return Err(BrainError::Timeout(limit.as_millis() as u64)),
                Ok(None) => return Err(BrainError::Incomplete),
                Ok(Some(Err(e))) => return Err(BrainError::Connect(e.to_string())),
                Ok(Some(Ok(chunk))) => chunk,
            };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                if let Some(done) = event(line.trim(), &mut content)? {
                    return Ok(done);
                }
            }
            if !told && decision_in(&content).is_some() {
                told = true;
                decided(&content);
            }
        }
    }
}

/// One server-sent event line: `Some(content)` once the stream is done.
fn event(line: &str, content: &mut String) -> Result<Option<String>, BrainError> {
    let Some(data) = line.strip_prefix("data:").map(str::trim) else { return Ok(None) };
    if data == "[DONE]" {
        return Ok(Some(std::mem::take(content)));
    }
    let value: Value = serde_json::from_str(data).map_err(|e| BrainError::Malformed(e.to_string()))?;
    if let Some(error) = value.get("error") {
        return Err(BrainError::Refused(error.to_string()));
    }
    let delta = &value["choices"][0]["delta"];
    if let Some(refusal) = delta["refusal"].as_str().filter(|r| !r.is_empty()) {
        return Err(BrainError::Refused(refusal.to_string()));
    }
    if let Some(piece) = delta["content"].as_str() {
        content.push_str(piece);
    }
    Ok(None)
}

#[async_trait::async_trait]
impl Brain for OpenAiBrain {
    async fn judge(&self, request: &BrainRequest, decided: OnDecided<'_>) -> Result<String, BrainError> {
        self.health.check()?;
        let result = self.call(request, decided).await;
        self.health.record(result.is_ok());
        result
    }

    fn health(&self) -> &'static str {
        if self.health.is_up() { "ok" } else { "down" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_accumulate_content_until_done() {
        let mut content = String::new();
        assert_eq!(event(r#"data: {"choices":[{"delta":{"content":"{\"a\""}}]}"#, &mut content).unwrap(), None);
        assert_eq!(event(": keep-alive", &mut content).unwrap(), None);
        assert_eq!(event(r#"data: {"choices":[{"delta":{"content":":1}"}}]}"#, &mut content).unwrap(), None);
        assert_eq!(event("data: [DONE]", &mut content).unwrap().as_deref(), Some(r#"{"a":1}"#));
        assert!(matches!(event("data: {not json", &mut String::new()), Err(BrainError::Malformed(_))));
        let refusal = r#"data: {"choices":[{"delta":{"refusal":"I can't help with that."}}]}"#;
        assert!(matches!(event(refusal, &mut String::new()), Err(BrainError::Refused(_))));
    }
}
