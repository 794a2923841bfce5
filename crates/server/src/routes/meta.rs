//! The page and its assets, health, metrics, the OpenAPI description, and the answers for
//! paths and methods no route takes. Everything here is embedded in the binary.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json;
use crate::error::ApiError;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");
const OPENAPI_JSON: &str = include_str!("../../assets/openapi.json");

fn text(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

pub async fn index() -> Response {
    text("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn app_js() -> Response {
    text("text/javascript; charset=utf-8", APP_JS)
}

pub async fn style_css() -> Response {
    text("text/css; charset=utf-8", STYLE_CSS)
}

pub async fn openapi() -> Response {
    text("application/json", OPENAPI_JSON)
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    json(
        StatusCode::OK,
        json!({"status": "ok", "models": state.models().infos().len()}),
    )
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.pool();
    let body = state.metrics().render(pool.queue_depth(), pool.in_flight());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {} (see /openapi.json)",
        request.method(),
        request.uri().path()
    ))
}

pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {} (see /openapi.json)",
            request.uri().path(),
            request.method()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;

    /// The description parses and names every route the router serves.
    #[test]
    fn the_openapi_description_covers_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        for (path, method) in crate::ROUTES {
            assert!(
                doc["paths"][path][method.to_ascii_lowercase()].is_object(),
                "{method} {path} is not described"
            );
        }
        let described = doc["paths"].as_object().unwrap().len();
        let routed: std::collections::BTreeSet<_> = crate::ROUTES.iter().map(|(p, _)| p).collect();
        assert_eq!(
            described,
            routed.len(),
            "a path is described but not routed"
        );
    }
}
