//! The browser client (`web/`), compiled into the binary so the server runs from any directory. No framework and
//! no build step: plain HTML, CSS and JavaScript.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// `(file name, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../web/index.html")),
    ("room.html", "text/html; charset=utf-8", include_bytes!("../../web/room.html")),
    ("report.html", "text/html; charset=utf-8", include_bytes!("../../web/report.html")),
    ("observe.html", "text/html; charset=utf-8", include_bytes!("../../web/observe.html")),
    ("coach.html", "text/html; charset=utf-8", include_bytes!("../../web/coach.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../web/style.css")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("../../web/api.js")),
    ("rtc.js", "text/javascript; charset=utf-8", include_bytes!("../../web/rtc.js")),
    ("feedback.js", "text/javascript; charset=utf-8", include_bytes!("../../web/feedback.js")),
    ("avatar.js", "text/javascript; charset=utf-8", include_bytes!("../../web/avatar.js")),
];

fn serve(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *bytes)
                .into_response()
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route").into_response(),
    }
}

pub async fn index() -> Response {
    serve("index.html")
}

pub async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}
