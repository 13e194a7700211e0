//! Replaying recordings: the list of an interview's recordings (with a ticket URL for each, since a media
//! element cannot send a bearer header), and the media itself, decrypted as it is read, with byte ranges so a
//! player can seek to an answer. Readers are the candidate and the coaches the interview is shared with.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::TokenError;
use crate::domain::{InterviewId, UserId};
use crate::error::{ApiError, ErrorBody};
use crate::store::{Outcome, RecordingRecord, now_ms};
use crate::vault::sealed::CHUNK;

use super::AppState;
use super::extract::{ApiPath, ApiQuery, AuthUser, ClientIp};
use super::views::rfc3339;

#[derive(Serialize, ToSchema)]
pub struct RecordingView {
    pub id: String,
    /// `candidate` or `interviewer`.
    pub source: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The container as recorded, e.g. `audio/ogg` (Opus as received, no transcoding).
    pub media_type: String,
    pub bytes: i64,
    /// Where the recording starts on the session's clock: a word spoken at `start_ms` in the transcript is at
    /// `start_ms - offset_ms` in the recording.
    pub offset_ms: i64,
    pub duration_ms: i64,
    /// False while recording, or when the server stopped before closing it (it plays up to its last chunk).
    pub finished: bool,
    pub created_at: String,
    /// When the retention sweeper deletes it.
    pub expires_at: String,
    /// The media with a ticket for the caller, valid for an hour (for `<audio src>`).
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecordingList {
    pub items: Vec<RecordingView>,
}

/// The interview's recordings (none without the candidate's consent).
#[utoipa::path(get, path = "/interviews/{id}/recordings", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id")),
    responses(
        (status = 200, description = "Its recordings", body = RecordingList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such interview of the caller or shared with them", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<String>) -> Result<Json<RecordingList>, ApiError> {
    let interview = readable(&state, user.id, user.ip, &id, "recording.list").await?;
    let ticket = state.tokens.issue_media(user.id, &id, u64::try_from(now_ms() / 1000).unwrap_or_default());
    let items = state
        .store
        .recordings(interview)
        .await?
        .into_iter()
        .map(|r| RecordingView {
            url: format!("/api/v1/interviews/{id}/recording?source={}&kind={}&ticket={ticket}", r.source, r.kind),
            id: r.id,
            source: r.source,
            kind: r.kind,
            media_type: r.media_type,
            bytes: r.bytes,
            offset_ms: r.offset_ms,
            duration_ms: r.duration_ms,
            finished: r.finished_at.is_some(),
            created_at: rfc3339(r.created_at),
            expires_at: rfc3339(r.expires_at),
        })
        .collect();
    Ok(Json(RecordingList { items }))
}

#[derive(Deserialize, IntoParams)]
pub struct MediaQuery {
    /// `candidate` (default) or `interviewer`.
    source: Option<String>,
    /// `audio` (default) or `video` (the candidate's camera with their voice).
    kind: Option<String>,
    /// A ticket from the recordings list, instead of a bearer token.
    ticket: Option<String>,
}

/// The recorded media, decrypted: the whole file, or one byte range (`Range: bytes=a-b`, answered 206). Voices
/// are Ogg Opus, the camera WebM (VP8 with the candidate's voice).
#[utoipa::path(get, path = "/interviews/{id}/recording", tag = "interviews", security(("bearer" = [])),
    params(("id" = String, Path, description = "Interview id"), MediaQuery),
    responses(
        (status = 200, description = "The media", content_type = "audio/ogg", body = Vec<u8>),
        (status = 206, description = "The range asked for (`audio/ogg` or `video/webm`)", content_type = "audio/ogg", body = Vec<u8>),
        (status = 401, description = "Not signed in, or the ticket is invalid or expired", body = ErrorBody),
        (status = 404, description = "No such interview of the caller, or nothing recorded", body = ErrorBody),
        (status = 416, description = "The range lies outside the recording", body = ErrorBody),
        (status = 500, description = "The stored file fails authentication (damaged or altered)", body = ErrorBody),
    ))]
pub async fn media(
    State(state): State<AppState>,
    bearer: Option<AuthUser>,
    ip: ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<MediaQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = match (bearer, &query.ticket) {
        (Some(user), _) => user.id,
        (None, Some(ticket)) => state.tokens.verify_media(ticket, &id).map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized("ticket_expired", "the media ticket has expired; list the recordings again"),
            TokenError::Invalid => ApiError::unauthorized("invalid_ticket", "the media ticket is invalid"),
        })?,
        (None, None) => return Err(ApiError::unauthorized("unauthenticated", "an access token or a media ticket is required")),
    };
    let interview = readable(&state, user, ip, &id, "recording.read").await?;
    let source = query.source.as_deref().unwrap_or("candidate");
    let kind = query.kind.as_deref().unwrap_or("audio");
    let row = state
        .store
        .recordings(interview)
        .await?
        .into_iter()
        .find(|r| r.source == source && r.kind == kind)
        .ok_or_else(|| ApiError::not_found("recording"))?;
    serve(&state, row, headers.get(header::RANGE).and_then(|v| v.to_str().ok())).await
}

/// The interview if `user` may read it (theirs, or shared with them), audited as `action`.
async fn readable(state: &AppState, user: UserId, ip: ClientIp, id: &str, action: &str) -> Result<InterviewId, ApiError> {
    let interview = match id.parse::<InterviewId>() {
        Ok(interview) if state.store.interview_of(user, interview).await?.is_some() => Some(interview),
        Ok(interview) if state.store.is_shared_with(interview, user).await? => Some(interview),
        _ => None,
    };
    let outcome = if interview.is_some() { Outcome::Success } else { Outcome::Denied };
    state.store.audit(Some(&user.to_string()), action, Some(id), Some(&ip.to_text()), outcome, None).await?;
    interview.ok_or_else(|| ApiError::not_found("interview"))
}

/// Streams `range` of the recording, a chunk at a time from a blocking task; the first piece is read (and
/// authenticated) before answering, so a damaged file is an error status, not a broken stream.
async fn serve(state: &AppState, row: RecordingRecord, range: Option<&str>) -> Result<Response, ApiError> {
    let recordings = state.live.recordings.clone();
    let media_type = row.media_type.clone();
    let range = range.map(str::to_string);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let opened = tokio::task::spawn_blocking(move || {
        let mut reader = recordings.open(&row).map_err(|e| (row.id.clone(), e.to_string()))?;
        let len = reader.len();
        let Some((start, end)) = byte_range(range.as_deref(), len) else { return Ok((None, len)) };
        let first_end = end.min(start + CHUNK as u64);
        let first = reader.read_range(start, first_end).map_err(|e| (row.id.clone(), e.to_string()))?;
        let partial = range.is_some();
        // The rest streams from the blocking pool (bounded), paced by the client through the channel.
        tokio::task::spawn_blocking(move || {
            let _ = tx.blocking_send(Ok(Bytes::from(first)));
            let mut at = first_end;
            while at < end {
                let next = end.min(at + CHUNK as u64);
                let piece = reader.read_range(at, next).map_err(std::io::Error::other);
                let failed = piece.is_err();
                if tx.blocking_send(piece.map(Bytes::from)).is_err() || failed {
                    return;
                }
                at = next;
            }
        });
        Ok((Some((start, end, partial)), len))
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let (span, len) = opened.map_err(|(id, error)| {
        tracing::error!(recording = id, error, "recording does not open");
        ApiError::internal()
    })?;
    let Some((start, end, partial)) = span else {
        let error = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", format!("the recording has {len} bytes"));
        return Ok(([(header::CONTENT_RANGE, format!("bytes */{len}"))], error).into_response());
    };
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut response = Response::builder()
        .status(if partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK })
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-store");
    if partial {
        response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", end - 1));
    }
    response.body(body).map_err(|_| ApiError::internal())
}

/// The half-open byte span a `Range` header asks of `len` bytes: the whole file without one, `None` when the
/// range is unsatisfiable. Only a single range is honoured (several: the first).
fn byte_range(header: Option<&str>, len: u64) -> Option<(u64, u64)> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Some((0, len));
    };
    let first = spec.split(',').next()?.trim();
    let (from, to) = first.split_once('-')?;
    let (start, end) = match (from.trim(), to.trim()) {
        ("", suffix) => (len.saturating_sub(suffix.parse().ok()?), len),
        (from, "") => (from.parse().ok()?, len),
        (from, to) => (from.parse().ok()?, to.parse::<u64>().ok()?.saturating_add(1).min(len)),
    };
    (start < end && start < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn range_headers_map_to_spans_of_the_file() {
        assert_eq!(byte_range(None, 100), Some((0, 100)));
        assert_eq!(byte_range(Some("bytes=0-9"), 100), Some((0, 10)));
        assert_eq!(byte_range(Some("bytes=90-"), 100), Some((90, 100)));
        assert_eq!(byte_range(Some("bytes=-10"), 100), Some((90, 100)));
        assert_eq!(byte_range(Some("bytes=50-500"), 100), Some((50, 100)), "an end past the file is clamped");
        assert_eq!(byte_range(Some("bytes=10-20, 30-40"), 100), Some((10, 21)));
        assert_eq!(byte_range(Some("bytes=100-"), 100), None);
        assert_eq!(byte_range(Some("bytes=20-10"), 100), None);
        assert_eq!(byte_range(Some("bytes=x-"), 100), None);
        assert_eq!(byte_range(Some("bytes=0-"), 0), None);
    }
}
