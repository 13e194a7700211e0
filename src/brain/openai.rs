//! An OpenAI-compatible chat-completions client (vLLM, llama.cpp server, Ollama, Groq, Fireworks...): the
//! judgement is requested with streaming (`stream: true`, server-sent events) and a JSON schema
//! (`response_format`), so a slow first token is noticed early, the spoken decision that opens the reply is
//! handed on as soon as it is complete, and the reply is checked as it completes.
//! Timeouts: the first token within `first_token`, the whole reply within `total`. Any failure marks the
//! endpoint down for a while (`Health`).

use std::time::{Duration, Instant};

use candor_interviewer::brain::{BrainRequest, decision_in};
use candor_interviewer::stream::ReplyStream;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

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
        let mut chunks = response.bytes_stream();
        let mut reply = ReplyStream::new();
        let mut told = false;
        loop {
            let limit = if reply.content().is_empty() { self.first_token } else { self.total };
            let left = limit.checked_sub(started.elapsed()).unwrap_or_default();
            let chunk = match tokio::time::timeout(left, chunks.next()).await {
                Err(_) if reply.content().is_empty() => return Err(BrainError::FirstToken(limit.as_millis() as u64)),
                Err(_) => return Err(BrainError::Timeout(limit.as_millis() as u64)),
                Ok(None) => return Err(BrainError::Incomplete),
                Ok(Some(Err(e))) => return Err(BrainError::Connect(e.to_string())),
                Ok(Some(Ok(chunk))) => chunk,
            };
            if let Some(done) = reply.push(&chunk)? {
                return Ok(done);
            }
            if !told && decision_in(reply.content()).is_some() {
                told = true;
                decided(reply.content());
            }
        }
    }
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
