//! The web dashboard at `/` (`mailfleet serve`): one page of plain HTML, CSS and JavaScript
//! compiled into the binary, so nothing is built with Node.js and nothing is read from disk at
//! run time. The page only talks to the HTTP API under `/api/v1` with the token its user
//! pastes; every check (role, tenant) is the API's, so this module serves files and nothing else.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The page may load only its own script and style and talk only to its own origin; no frame
/// may embed it (the token it holds must not be clickjacked).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The dashboard's routes, to be merged into the server's router next to `/api/v1`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/index.html",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

/// One asset with headers that keep it from going stale after an upgrade (`no-cache`:
/// revalidated each time; the files are small) and from being sniffed as something else.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page must name exactly the assets this module serves.
    #[test]
    fn the_page_loads_the_served_assets() {
        assert!(INDEX_HTML.contains(r#"src="app.js""#));
        assert!(INDEX_HTML.contains(r#"href="app.css""#));
    }

    /// The policy forbids inline script and style, so the page must carry none.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
        assert!(!APP_JS.contains("innerHTML"));
    }
}
