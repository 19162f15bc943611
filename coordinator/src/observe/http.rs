//! The HTTP surface of long-running processes (`--metrics-listen`): Prometheus `/metrics`,
//! `/healthz` for orchestrators, and on a coordinator `/status` with every user's result.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::error::CliError;
use crate::run::status_board::StatusBoard;

struct Served {
    registry: Registry,
    status: Option<Arc<StatusBoard>>,
}

/// Binds `listen` and serves in the background for the rest of the process.
pub async fn serve(
    listen: SocketAddr,
    registry: Registry,
    status: Option<Arc<StatusBoard>>,
) -> Result<SocketAddr, CliError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Invalid(format!("metrics_listen {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| CliError::failed(format!("metrics_listen {listen}"), e))?;
    let app = router(registry, status);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    tracing::info!("serving http://{bound}/metrics");
    Ok(bound)
}

/// `/metrics`, `/healthz` and, given a board, `/status`: for [`serve`] and for `mailfleet
/// serve`'s listener (which has no `/status`: it would show every tenant's users to anyone).
pub fn router(registry: Registry, status: Option<Arc<StatusBoard>>) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }));
    let router = match status {
        Some(_) => router.route("/status", get(status_json)),
        None => router,
    };
    router.with_state(Arc::new(Served { registry, status }))
}

async fn metrics(State(served): State<Arc<Served>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &served.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn status_json(State(served): State<Arc<Served>>) -> Response {
    match &served.status {
        Some(board) => Json(serde_json::json!({
            "users": board.results(),
            "admission": board.admission(),
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, "a worker has no batch status").into_response(),
    }
}
