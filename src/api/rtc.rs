//! The endpoints that start live sessions: WebSocket signaling (`GET /api/v1/interviews/{id}/rtc`, protocol v1,
//! trickle ICE both ways) for candidates and observers, and WHIP (`POST`/`DELETE .../whip`) for candidates.
//!
//! Refusals on the WebSocket (bad token, someone else's interview, a second live session) arrive as a v1
//! `error` message followed by a close, so browsers, which cannot read a failed handshake, still learn why.
//! Once admitted, one signaling loop serves both roles: the participant's `Leg` (from `live`) does the rest.
//! Signaling for a session that runs on another node (a rejoin, an observer) is relayed there (`relay`).


use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use candor_signaling::limits::{MAX_MESSAGE_BYTES, MessageRate, RateVerdict};
use candor_signaling::{Action, Negotiation, ProtocolError, Sdp, ServerMessage};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::relayed_for;
use super::{ApiPath, ApiQuery, AppState, AuthUser, ClientIp, relay};
use crate::auth::TokenError;
use crate::live::{CandidateLeg, ClaimRefused, Join, Leg, Next, ObserverLeg};
use crate::domain::{InterviewId, Role, UserId};
use crate::error::{ApiError, ErrorBody};
use crate::store::Outcome;

/// Frames above this are refused by the WebSocket layer itself; between 64 KiB and this, the protocol answers
/// `message_too_large` and the session goes on.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

#[derive(Deserialize, IntoParams)]
pub struct RtcQuery {
    /// Access token (browsers cannot set headers on a WebSocket).
    access_token: Option<String>,
    /// `candidate` (default) or `observer`.
    role: Option<String>,
}

/// Why a participant may not join, as a protocol error code and message.
struct Refusal(&'static str, String);

/// Where an admitted participant's signaling goes.
enum Admitted {
    /// The session is (or starts) on this node.
    Here(Box<dyn Leg>),
    /// The session runs on the node at this URL.
    There(String),
}

impl Refusal {
    fn message(&self) -> ServerMessage {
        ServerMessage::Error { code: self.0.to_string(), message: self.1.clone() }
    }
}

/// WebSocket signaling for a live session (protocol v1).
#[utoipa::path(get, path = "/interviews/{id}/rtc", tag = "live", params(("id" = String, Path, description = "Interview id"), RtcQuery),
    responses(
        (status = 101, description = "WebSocket: protocol v1 signaling messages, one JSON object per text frame"),
        (status = 400, description = "Not a WebSocket upgrade request"),
    ))]
pub async fn websocket(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RtcQuery>,
    headers: HeaderMap,
    uri: axum::extract::OriginalUri,
    upgrade: WebSocketUpgrade,
) -> Response {
    let relayed = relayed_for(&headers, &state.tokens).is_some();
    let admitted = admit(&state, &id, query.access_token.as_deref(), query.role.as_deref(), ip, relayed).await;
    let offer_timeout = std::time::Duration::from_secs(state.config.signaling_offer_timeout_secs);
    upgrade.max_message_size(MAX_FRAME_BYTES).on_upgrade(move |socket| async move {
        match admitted {
            Ok(Admitted::Here(leg)) => signal(socket, leg, offer_timeout).await,
            Ok(Admitted::There(node)) => {
                let path = uri.0.path_and_query().map_or(uri.0.path(), |p| p.as_str());
                match relay::connect(&node, path, &state.tokens, ip.0).await {
                    Ok(upstream) => relay::pipe(socket, upstream).await,
                    Err(error) => {
                        tracing::warn!(node, error, "the node running this session could not be reached");
                        let message = "the server running this session cannot be reached; try again".into();
                        refuse(socket, Refusal("node_unreachable", message)).await;
                    }
                }
            }
            Err(refusal) => refuse(socket, refusal).await,
        }
    })
}

/// Checks who joins and where their session is. `relayed`: another node sent this here, so it stays here.
async fn admit(
    state: &AppState,
    id: &str,
    token: Option<&str>,
    role: Option<&str>,
    ip: ClientIp,
    relayed: bool,
) -> Result<Admitted, Refusal> {
    let ip_text = ip.to_text();
    let claims = match token.map(|t| state.tokens.verify_access(t)) {
        Some(Ok(claims)) => claims,
        failure => {
            let (reason, code, message) = match failure {
                None => ("missing", "unauthenticated", "an access_token query parameter is required"),
                Some(Err(TokenError::Expired)) => ("expired", "token_expired", "the access token has expired"),
                _ => ("invalid", "invalid_token", "the access token is invalid"),
            };
            state.metrics.auth_failures.with_label_values(&[reason]).inc();
            let _ = state
                .store
                .audit(None, "auth.access_token", Some(id), Some(&ip_text), Outcome::Failure, Some(reason))
                .await;
            return Err(Refusal(code, message.into()));
        }
    };
    let user: UserId = claims.user_id().map_err(|_| Refusal("invalid_token", "the access token is invalid".into()))?;
    let actor = user.to_string();
    let not_found = || Refusal("not_found", "interview not found".into());
    let interview_id: InterviewId = id.parse().map_err(|_| not_found())?;
    let internal = |_| Refusal("internal", "internal error; it has been logged".into());
    match role.unwrap_or("candidate") {
        "candidate" => {
            let interview = state.store.interview_of(user, interview_id).await.map_err(internal)?;
            let outcome = if interview.is_some() { Outcome::Success } else { Outcome::Denied };
            let _ =
                state.store.audit(Some(&actor), "interview.live.join", Some(id), Some(&ip_text), outcome, None).await;
            let interview = interview.ok_or_else(not_found)?;
            if interview.status.is_final() {
                return Err(Refusal("interview_ended", format!("the interview is {}", interview.status)));
            }
            if let Some(session) = state.live.rejoinable(user, interview_id) {
                return Ok(Admitted::Here(Box::new(CandidateLeg::rejoin(session))));
            }
            match state.live.claim(user, interview_id).await {
                Ok(claim) => Ok(Admitted::Here(Box::new(CandidateLeg::new(claim)))),
                Err(ClaimRefused::RunsElsewhere(node)) if !relayed => Ok(Admitted::There(node)),
                Err(e) => Err(Refusal(e.code(), e.to_string())),
            }
        }
        "observer" => {
            let allowed =
                claims.role == Role::Admin || state.store.is_shared_with(interview_id, user).await.map_err(internal)?;
            let outcome = if allowed { Outcome::Success } else { Outcome::Denied };
            let _ = state
                .store
                .audit(Some(&actor), "interview.live.observe", Some(id), Some(&ip_text), outcome, None)
                .await;
            if !allowed {
                return Err(not_found());
            }
            let Some(session) = state.live.session(interview_id) else {
                return match state.live.runs_elsewhere(interview_id).await {
                    Some(node) if !relayed => Ok(Admitted::There(node)),
                    _ => Err(Refusal("not_live", "the interview has no live session to observe".into())),
                };
            };
            let leg = ObserverLeg::join(user, session)
                .ok_or_else(|| Refusal("too_many_observers", "the session has as many observers as it takes".into()))?;
            Ok(Admitted::Here(Box::new(leg)))
        }
        other => Err(Refusal("invalid_role", format!("role must be candidate or observer, not {other:?}"))),
    }
}

async fn refuse(mut socket: WebSocket, refusal: Refusal) {
    let _ = socket.send(Message::Text(refusal.message().to_json().into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    socket.send(Message::Text(message.to_json().into())).await.is_ok()
}

/// The signaling loop of one participant: v1 messages in, the leg's answer and candidates out, until the socket
/// closes, negotiation stops or the leg ends. A socket that sends no offer within `offer_timeout` is closed
/// (`offer_timeout`), and one that floods is refused and then closed (`rate_limited`).
async fn signal(mut socket: WebSocket, mut leg: Box<dyn Leg>, offer_timeout: std::time::Duration) {
    let mut negotiation = Negotiation::new();
    let mut rate = MessageRate::default();
    let opened = tokio::time::Instant::now();
    let reason = loop {
        let deadline = opened + offer_timeout;
        tokio::select! {
            () = tokio::time::sleep_until(deadline), if negotiation.awaiting_offer() => break "offer_timeout",
            message = socket.recv() => {
                match rate.check(u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX)) {
                    RateVerdict::Allow => {}
                    RateVerdict::Refuse { tell } => {
                        if tell {
                            let message = ServerMessage::Error { code: "rate_limited".into(), message: "too many messages; slow down".into() };
                            send(&mut socket, &message).await;
                        }
                        continue;
                    }
                    RateVerdict::Close => break "rate_limited",
                }
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let error = ProtocolError::Invalid("signaling messages are JSON text frames".into());
                        send(&mut socket, &ServerMessage::error(&error)).await;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break "signaling_closed",
                };
                let mut close = None;
                for action in negotiation.handle_text(&text) {
                    match action {
                        Action::ApplyOffer { sdp, summary } => match leg.offer(&sdp, &summary).await {
                            Ok(Some(answer)) => {
                                send(&mut socket, &ServerMessage::Answer { sdp: answer }).await;
                            }
                            Ok(None) => tracing::debug!("a further offer ignored"),
                            Err(e) => {
                                tracing::warn!(error = %e, "negotiation failed");
                                let message = ServerMessage::Error { code: "negotiation_failed".into(), message: e.to_string() };
                                send(&mut socket, &message).await;
                                close = Some("negotiation_failed");
                            }
                        },
                        Action::AddCandidate(candidate) => {
                            if let Err(e) = leg.add_candidate(&candidate).await {
                                let message = ServerMessage::Error { code: "invalid_candidate".into(), message: e.to_string() };
                                send(&mut socket, &message).await;
                            }
                        }
                        Action::EndOfCandidates => {}
                        Action::IgnoreCandidate(why) => tracing::debug!(why, "remote candidate ignored"),
                        Action::Reply(message) => {
                            send(&mut socket, &message).await;
                        }
                        Action::Close { reason } => close = Some(reason),
                    }
                }
                if let Some(reason) = close {
                    break reason;
                }
            }
            next = leg.next() => match next {
                Next::Candidate(candidate) => {
                    send(&mut socket, &ServerMessage::Candidate { candidate }).await;
                }
                Next::Ended(reason) => break reason,
            },
        }
    };
    leg.close(reason).await;
    let _ = send(&mut socket, &ServerMessage::Ended { reason: reason.to_string() }).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// WHIP ingest (RFC 9725): the body is an SDP offer; the answer comes back complete (no trickle).
#[utoipa::path(post, path = "/interviews/{id}/whip", tag = "live", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    request_body(content = String, content_type = "application/sdp"),
    responses(
        (status = 201, description = "SDP answer; Location names the session resource", content_type = "application/sdp", body = String),
        (status = 400, description = "Invalid SDP or an offer without audio", body = ErrorBody),
        (status = 404, description = "No such interview of the caller", body = ErrorBody),
        (status = 409, description = "A live session is already running (`session_already_live`) or the interview ended", body = ErrorBody),
        (status = 503, description = "This server carries as many live interviews as it may (`server_full`)", body = ErrorBody),
        (status = 415, description = "Not application/sdp", body = ErrorBody),
        (status = 502, description = "The session runs on another node that could not be reached (`node_unreachable`)", body = ErrorBody),
    ))]
pub async fn whip_offer(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = format!("/api/v1/interviews/{id}/whip");
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !is_sdp {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "WHIP offers are application/sdp",
        ));
    }
    let bad = |e: ProtocolError| ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string());
    let text = std::str::from_utf8(&body).map_err(|_| bad(ProtocolError::InvalidSdp("not UTF-8".into())))?;
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the offer is larger than 64 KiB",
        ));
    }
    let sdp = Sdp::parse(text).map_err(bad)?;
    let summary = sdp.summarize_offer().map_err(bad)?;
    // Every refusal from here on is audited (the detail says which), as the signaling socket's are.
    let actor = user.id.to_string();
    let audit = |outcome: Outcome, detail: &'static str| {
        let (store, actor, id, ip) = (state.store.clone(), actor.clone(), id.clone(), user.ip.to_text());
        async move { store.audit(Some(&actor), "interview.live.join", Some(&id), Some(&ip), outcome, Some(detail)).await }
    };
    let interview = match id.parse::<InterviewId>() {
        Ok(interview_id) => state.store.interview_of(user.id, interview_id).await?,
        Err(_) => None,
    };
    let Some(interview) = interview else {
        audit(Outcome::Denied, "whip").await?;
        return Err(ApiError::not_found("interview"));
    };
    if interview.status.is_final() {
        audit(Outcome::Failure, "interview_ended").await?;
        return Err(ApiError::conflict("interview_ended", format!("the interview is {}", interview.status)));
    }
    let join = match state.live.rejoinable(user.id, interview.id) {
        Some(session) => Join::Rejoin(session),
        None => match state.live.claim(user.id, interview.id).await {
            Ok(claim) => Join::Start(claim),
            Err(ClaimRefused::RunsElsewhere(node)) if relayed_for(&headers, &state.tokens).is_none() => {
                audit(Outcome::Success, "whip_relayed").await?;
                return relay::whip(&node, reqwest::Method::POST, &path, &headers, body, &state.tokens, user.ip.0).await;
            }
            Err(e) => {
                audit(Outcome::Failure, e.code()).await?;
                return Err(match e {
                    ClaimRefused::AlreadyLive | ClaimRefused::RunsElsewhere(_) => ApiError::conflict(e.code(), e.to_string()),
                    ClaimRefused::NodeFull(_) | ClaimRefused::Draining => {
                        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
                    }
                });
            }
        },
    };
    audit(Outcome::Success, "whip").await?;
    let started = join
        .offer(&sdp, summary.audio.mid, true)
        .await
        .map_err(|(e, _)| e)
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "negotiation_failed", e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/sdp".to_string()), (header::LOCATION, path)],
        started.answer,
    )
        .into_response())
}

/// Ends the interview's WHIP (or any) live session.
#[utoipa::path(delete, path = "/interviews/{id}/whip", tag = "live", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    responses((status = 204, description = "Ended"), (status = 404, description = "No live session of the caller", body = ErrorBody),
        (status = 502, description = "The session runs on another node that could not be reached (`node_unreachable`)", body = ErrorBody)))]
pub async fn whip_delete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let interview = id.parse::<InterviewId>().map_err(|_| ApiError::not_found("live session"))?;
    if let Some(session) = state.live.session(interview).filter(|s| s.user == user.id) {
        session.end("client_ended").await;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    match state.live.runs_elsewhere(interview).await {
        // That node checks whose session it is.
        Some(node) if relayed_for(&headers, &state.tokens).is_none() => {
            let path = format!("/api/v1/interviews/{id}/whip");
            relay::whip(&node, reqwest::Method::DELETE, &path, &headers, Bytes::new(), &state.tokens, user.ip.0).await
        }
        _ => Err(ApiError::not_found("live session")),
    }
}
