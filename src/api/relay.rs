//! Signaling that reaches a node other than the one running the session is relayed there: the WebSocket frame by
//! frame, a WHIP request as a whole. Only signaling travels this way; the media flows between the client and the
//! session's node directly, since its ICE candidates are that node's. Relaying (rather than redirecting) keeps
//! every v1 client working unchanged, needs no cross-origin connection from pages, and keeps node addresses
//! inside the cluster network.
//!
//! The relayed request carries `RELAYED_FOR`, signed with the key every node shares: the receiving node takes
//! the client's address from it, does not count the request against rate limits a second time, and never relays
//! it further (so stale routing cannot loop).

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use super::extract::RELAYED_FOR;
use crate::auth::Tokens;
use crate::error::ApiError;

/// How long reaching the session's node may take before the client is told it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds")
});

/// The signed `RELAYED_FOR` value for `client`.
fn relayed_for(tokens: &Tokens, client: IpAddr) -> HeaderValue {
    let token = tokens.issue_relay(client, crate::store::now_ms() as u64 / 1000);
    HeaderValue::from_str(&token).expect("a JWT is a valid header value")
}

/// Connects to the same signaling endpoint on `node` (its `http://` base URL) for `client`; `path_and_query` is
/// the client's, token included.
pub async fn connect(
    node: &str,
    path_and_query: &str,
    tokens: &Tokens,
    client: IpAddr,
) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, String> {
    let url = format!("ws://{}{path_and_query}", node.trim_start_matches("http://"));
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(RELAYED_FOR, relayed_for(tokens, client));
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Carries frames both ways between the client and the session's node until either side closes.
pub async fn pipe(
    mut client: WebSocket,
    upstream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    let (mut to_node, mut from_node) = upstream.split();
    loop {
        tokio::select! {
            message = client.recv() => {
                let relayed = match message {
                    Some(Ok(Message::Text(text))) => tungstenite::Message::Text(text.as_str().into()),
                    Some(Ok(Message::Binary(bytes))) => tungstenite::Message::Binary(bytes),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if to_node.send(relayed).await.is_err() {
                    break;
                }
            }
            message = from_node.next() => {
                let relayed = match message {
                    Some(Ok(tungstenite::Message::Text(text))) => Message::Text(text.as_str().into()),
                    Some(Ok(tungstenite::Message::Binary(bytes))) => Message::Binary(bytes),
                    Some(Ok(tungstenite::Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                if client.send(relayed).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_node.send(tungstenite::Message::Close(None)).await;
    let _ = client.send(Message::Close(None)).await;
}

/// Relays a WHIP request (`POST` with its offer, or `DELETE`) to `node` and returns its answer as is.
pub async fn whip(
    node: &str,
    method: reqwest::Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    tokens: &Tokens,
    client: IpAddr,
) -> Result<Response, ApiError> {
    let mut request = HTTP.request(method, format!("{node}{path}")).header(RELAYED_FOR, relayed_for(tokens, client)).body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let unreachable = |e: reqwest::Error| {
        tracing::warn!(node, error = %e, "the node running this session could not be reached");
        ApiError::new(StatusCode::BAD_GATEWAY, "node_unreachable", "the server running this session cannot be reached; try again")
    };
    let answer = request.send().await.map_err(unreachable)?;
    let status = answer.status();
    let mut relayed = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(value) = answer.headers().get(&name) {
            relayed.insert(name, value.clone());
        }
    }
    let body = answer.bytes().await.map_err(unreachable)?;
    Ok((status, relayed, body).into_response())
}
