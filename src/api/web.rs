//! The browser client (`web/`), compiled into the binary so the server runs from any directory. No framework and
//! no build step: plain HTML, CSS and JavaScript.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// `(file name, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../web/index.html")),
    ("room.html", "text/html; charset=utf-8", include_bytes!("../../web/room.html")),
    ("report.html", "text/html; charset=utf-8", include_bytes!("../../web/report.html")),
    ("observe.html", "text/html; charset=utf-8", include_bytes!("../../web/observe.html")),
    ("coach.html", "text/html; charset=utf-8", include_bytes!("../../web/coach.html")),
    ("reset.html", "text/html; charset=utf-8", include_bytes!("../../web/reset.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../web/style.css")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("../../web/api.js")),
    ("rtc.js", "text/javascript; charset=utf-8", include_bytes!("../../web/rtc.js")),
    ("feedback.js", "text/javascript; charset=utf-8", include_bytes!("../../web/feedback.js")),
    ("avatar.js", "text/javascript; charset=utf-8", include_bytes!("../../web/avatar.js")),
];

fn serve(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => {
            let headers = [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")];
            let mut response = (StatusCode::OK, headers, *bytes).into_response();
            if name.ends_with(".html")
                && let Ok(policy) = HeaderValue::from_str(&page_policy(bytes))
            {
                response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
            }
            response
        }
        None => ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route").into_response(),
    }
}

/// A page's Content-Security-Policy: its own scripts only (files from this server, and its inline scripts by
/// hash, so no injected script runs), connections and media from this server, no plugins, never framed.
fn page_policy(html: &[u8]) -> String {
    let scripts: String = inline_scripts(&String::from_utf8_lossy(html))
        .map(|script| format!(" 'sha256-{}'", BASE64.encode(Sha256::digest(script.as_bytes()))))
        .collect();
    format!(
        "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
         media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The text of each `<script>` element without a `src`, exactly as the browser hashes it.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, body) = rest.split_once('>')?;
        let (script, _) = body.split_once("</script>")?;
        (!attributes.contains("src=")).then_some(script)
    })
}

pub async fn index() -> Response {
    serve("index.html")
}

pub async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}
